"""Domain specialisation of expert load (notebooks 05 and 09): per-layer relative load across domains, and its
intervals over seeds and held-out documents."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MoeError
from ..stats import grouped_bootstrap_ci, two_stage_bootstrap_ci


def domain_specialisation(rel: np.ndarray) -> float:
    """Mean over layers and experts of the std across domains of relative load. rel: [domains, layers, experts]."""
    rel = np.asarray(rel, dtype=float)
    if rel.ndim != 3 or rel.shape[0] < 2:
        raise MoeError(f"rel.shape={rel.shape} is not allowed; it must be [domains >= 2, layers, experts]")
    return float(rel.std(axis=0).mean())


def _relative(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Relative load [domains, methods, seeds, layers, experts] of the summed documents of each domain."""
    rel = []
    for g in groups.values():
        c = g.sum(0).astype(float)  # [methods, seeds, layers, experts]
        rel.append(c / (c.sum(-1, keepdims=True) / c.shape[-1]))  # tokens / (K·T/N): K·T = all routed tokens
    return np.stack(rel)


def specialisation_by_method(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Seed-mean domain specialisation per method [methods] from ``stacked_counts``-shaped groups."""
    return _relative(groups).std(axis=0).mean(axis=(-2, -1)).mean(-1)


def heldout_maxvio_by_method(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Seed-mean held-out MaxVio (domains pooled, layer mean) per method [methods]."""
    c = sum(g.sum(0).astype(float) for g in groups.values())  # [methods, seeds, layers, experts]
    mean = c.mean(-1)
    return ((c.max(-1) - mean) / mean).mean(axis=(-2, -1))


def document_bootstrap(
    groups: dict[str, np.ndarray], methods: tuple[str, str], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """95 % intervals of the seed-mean statistics per method and of their aux_free − aux_loss differences, two ways:
    ``ci_low``/``ci_high`` from a two-stage bootstrap (the seeds, then held-out documents within each domain), which
    holds the spread between trained models; ``doc_ci_low``/``doc_ci_high`` with the models fixed (documents only).
    Rows: statistic, method, estimate and both intervals (recentred on the estimate, never clipped)."""
    base_name, free_name = methods  # groups hold the methods in this order: [documents, methods, seeds, ...]
    free, base = 1, 0
    stats = {"specialisation": specialisation_by_method, "heldout_maxvio": heldout_maxvio_by_method}
    rows = []
    for name, fn in stats.items():
        for label, pick in (
            (base_name, lambda v: v[0]),
            (free_name, lambda v: v[1]),
            (f"{free_name} − {base_name}", lambda v: v[free] - v[base]),
        ):
            statistic = lambda g, fn=fn, pick=pick: float(pick(fn(g)))  # noqa: E731
            point, low, high = two_stage_bootstrap_ci(groups, statistic, seed_axis=2, n_boot=n_boot, seed=seed)
            _, doc_low, doc_high = grouped_bootstrap_ci(groups, statistic, n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "statistic": name,
                    "method": label,
                    "estimate": point,
                    "ci_low": low,
                    "ci_high": high,
                    "doc_ci_low": doc_low,
                    "doc_ci_high": doc_high,
                    "documents": "; ".join(f"{d} {len(v)}" for d, v in groups.items()),
                    "seeds": next(iter(groups.values())).shape[2],
                }
            )
    return pd.DataFrame(rows)
