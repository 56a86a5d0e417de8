"""Several seeds of one study: the seed list, mean ± std per group, and paired margins between two settings."""
from __future__ import annotations

import pandas as pd

from ..errors import MoeError, check_int, check_positive


def seed_list(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a study: ``seed``, ``seed + 1``, … (``n_seeds`` of them); the first is the notebook's SEED."""
    check_int("SEED", seed)
    check_positive("N_SEEDS", n_seeds)
    return [int(seed) + i for i in range(n_seeds)]


def seed_summary(per_seed: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    """Mean, std (ddof 1), min, max and n of each value column over seeds, per ``by`` group (columns ``<value>_mean`` …)."""
    missing = sorted(set(by + values + ["seed"]) - set(per_seed.columns))
    if missing:
        raise MoeError(f"per-seed table has no column(s) {missing}")
    grouped = per_seed.groupby(by, sort=False)[values]
    stats = {"mean": grouped.mean(), "std": grouped.std(ddof=1), "min": grouped.min(), "max": grouped.max()}
    out = pd.concat({k: v for k, v in stats.items()}, axis=1)
    out.columns = [f"{value}_{stat}" for stat, value in out.columns]
    ordered = [f"{v}_{s}" for v in values for s in stats]
    out = out[ordered].reset_index()
    out["n_seeds"] = per_seed.groupby(by, sort=False)["seed"].nunique().to_numpy()
    return out


def paired_margin(per_seed: pd.DataFrame, column: str, a, b, value: str) -> dict:
    """Per-seed difference value(a) − value(b) of rows whose ``column`` is a or b, paired by seed.

    Returns mean, std (ddof 1), min, max of the differences, n (seeds with both), ``holds`` (seeds where a > b) and
    ``below`` (seeds where a < b).
    """
    wide = per_seed[per_seed[column].isin([a, b])].pivot_table(index="seed", columns=column, values=value)
    if a not in wide.columns or b not in wide.columns:
        raise MoeError(f"{column}={a!r} or {b!r} has no rows; paired margins need both")
    diff = (wide[a] - wide[b]).dropna()
    if len(diff) == 0:
        raise MoeError(f"{column}={a!r} and {b!r} share no seed; paired margins need both in one seed")
    return {"a": a, "b": b, "value": value, "mean": float(diff.mean()), "std": float(diff.std(ddof=1)) if len(diff) > 1 else float("nan"),
            "min": float(diff.min()), "max": float(diff.max()), "n": int(len(diff)), "holds": int((diff > 0).sum()),
            "below": int((diff < 0).sum())}


def margin_text(m: dict, scale: float = 1.0, unit: str = "", decimals: int = 3) -> str:
    """"+0.123 ± 0.010 (higher in 5 of 5 seeds)" or "−0.04 ± 0.01 (lower in 4 of 5 seeds)" from a ``paired_margin``
    result, values times ``scale``; the count is of the seeds whose difference has the mean's sign."""
    mean, std = m["mean"] * scale, m["std"] * scale
    sign = "+" if mean >= 0 else "−"
    side, count = ("higher", m["holds"]) if mean >= 0 else ("lower", m["below"])
    return f"{sign}{abs(mean):.{decimals}f} ± {std:.{decimals}f}{unit} ({side} in {int(count)} of {int(m['n'])} seeds)"


def mean_std_text(values: pd.Series, decimals: int = 3, scale: float = 1.0) -> str:
    """"0.736 ± 0.012" (mean ± std over seeds, ddof 1) of a per-seed series."""
    values = values.astype(float) * scale
    std = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.{decimals}f} ± {std:.{decimals}f}".replace("-", "−")
