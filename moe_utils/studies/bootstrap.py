"""Bootstrap over documents: confidence intervals for statistics computed from per-document counts."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import MoeError, check_positive, check_range


def bootstrap_ci(
    units: list[np.ndarray] | np.ndarray, statistic: Callable[[np.ndarray], float], *, n_boot: int = 1000, level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, low, high): ``statistic`` of the stacked units, and its percentile interval over resamples.

    ``units`` holds one entry per document (e.g. its routing counts [layers, experts]); each resample draws as many
    documents with replacement and applies ``statistic`` to the stacked draw [documents, ...].
    """
    units = np.asarray(units)
    if len(units) < 2:
        raise MoeError(f"bootstrap needs at least 2 documents; got {len(units)}")
    check_positive("n_boot", n_boot)
    check_range("level", level, 0.5, 0.999)
    rng = np.random.default_rng(seed)
    point = float(statistic(units))
    draws = np.array([statistic(units[rng.integers(0, len(units), len(units))]) for _ in range(n_boot)])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return point, float(min(low, point)), float(max(high, point))


def grouped_bootstrap_ci(
    groups: dict[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], float], *, n_boot: int = 1000,
    level: float = 0.95, seed: int = 0,
) -> tuple[float, float, float]:
    """Like ``bootstrap_ci`` with documents resampled *within* each group (e.g. each domain keeps its document count)."""
    for name, units in groups.items():
        if len(units) < 2:
            raise MoeError(f"bootstrap needs at least 2 documents per group; {name!r} has {len(units)}")
    check_positive("n_boot", n_boot)
    check_range("level", level, 0.5, 0.999)
    rng = np.random.default_rng(seed)
    groups = {k: np.asarray(v) for k, v in groups.items()}
    point = float(statistic(groups))
    draws = np.array([
        statistic({k: v[rng.integers(0, len(v), len(v))] for k, v in groups.items()}) for _ in range(n_boot)
    ])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return point, float(min(low, point)), float(max(high, point))
