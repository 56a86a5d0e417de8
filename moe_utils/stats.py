"""Statistics over seeds and resamples, shared by Experiment 1 and the studies: seed lists, per-group summaries,
paired margins, bootstrap intervals, and the one mean ± std formatter."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .errors import MoeError, check_int, check_positive, check_range


def seed_list(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a study: ``seed``, ``seed + 1``, … (``n_seeds`` of them); the first is the notebook's SEED."""
    check_int("SEED", seed)
    check_positive("N_SEEDS", n_seeds)
    return [int(seed) + i for i in range(n_seeds)]


def group_stats(table: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, std (ddof 1), min, max and count of ``value`` per ``keys`` group (columns mean, std, min, max, count)."""
    return table.groupby(keys, sort=False)[value].agg(["mean", "std", "min", "max", "count"]).reset_index()


def seed_summary(per_seed: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    """Mean, std (ddof 1), min, max and n of each value column over seeds, per ``by`` group (columns ``<value>_mean`` …)."""
    missing = sorted(set(by + values + ["seed"]) - set(per_seed.columns))
    if missing:
        raise MoeError(f"per-seed table has no column(s) {missing}")
    grouped = per_seed.groupby(by, sort=False)[values]
    stats = {"mean": grouped.mean(), "std": grouped.std(ddof=1), "min": grouped.min(), "max": grouped.max()}
    out = pd.concat(stats, axis=1)
    out.columns = [f"{value}_{stat}" for stat, value in out.columns]
    out = out[[f"{v}_{s}" for v in values for s in stats]].reset_index()
    out["n_seeds"] = per_seed.groupby(by, sort=False)["seed"].nunique().to_numpy()
    return out


def student_t_cdf(x: float, df: int) -> float:
    """P(T ≤ x) for Student's t with ``df`` degrees of freedom (Simpson's rule on its density; |error| < 1e-7)."""
    check_positive("df", df)
    if x < 0:
        return 1.0 - student_t_cdf(-x, df)
    const = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    n = max(2000, 2 * int(100 * x))  # even
    grid = np.linspace(0.0, x, n + 1)
    density = const * (1 + grid**2 / df) ** (-(df + 1) / 2)
    weights = np.ones(n + 1)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return 0.5 + float(density @ weights) * (x / n) / 3


def student_t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t with ``df`` degrees of freedom (bisection on ``student_t_cdf``)."""
    check_range("p", p, 1e-6, 1 - 1e-6)
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the ``level`` t-interval of the mean of ``values`` (n − 1 degrees of freedom; nan for n < 2)."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return mean, float("nan"), float("nan")
    half = student_t_quantile(1 - (1 - level) / 2, n - 1) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_margin(per_seed: pd.DataFrame, column: str, a, b, value: str) -> dict:
    """Per-seed difference value(a) − value(b) of rows whose ``column`` is a or b, paired by seed.

    Returns mean, std (ddof 1), min, max of the differences, n (seeds with both), ``holds`` (seeds where a > b),
    ``below`` (seeds where a < b), the t statistic and the 95 % t-interval of the mean difference over seeds.
    """
    wide = per_seed[per_seed[column].isin([a, b])].pivot_table(index="seed", columns=column, values=value)
    if a not in wide.columns or b not in wide.columns:
        raise MoeError(f"{column}={a!r} or {b!r} has no rows; paired margins need both")
    diff = (wide[a] - wide[b]).dropna()
    if len(diff) == 0:
        raise MoeError(f"{column}={a!r} and {b!r} share no seed; paired margins need both in one seed")
    return {
        "a": a,
        "b": b,
        "value": value,
        "mean": float(diff.mean()),
        "std": float(diff.std(ddof=1)) if len(diff) > 1 else float("nan"),
        "min": float(diff.min()),
        "max": float(diff.max()),
        "n": int(len(diff)),
        "holds": int((diff > 0).sum()),
        "below": int((diff < 0).sum()),
        "t": float(diff.mean() / (diff.std(ddof=1) / math.sqrt(len(diff)))) if len(diff) > 1 else float("nan"),
        "t_low": t_interval(diff)[1],
        "t_high": t_interval(diff)[2],
    }


def mean_std(mean: float, std: float, decimals: int = 3) -> str:
    """The one mean ± std formatter: ``0.736 ± 0.012`` (a real minus sign)."""
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}".replace("-", "−")


def mean_std_text(values: pd.Series, decimals: int = 3, scale: float = 1.0) -> str:
    """``mean_std`` of a per-seed series (std with ddof 1; nan for one seed), values times ``scale``."""
    values = values.astype(float) * scale
    std = values.std(ddof=1) if len(values) > 1 else float("nan")
    return mean_std(values.mean(), std, decimals)


def margin_text(m: dict, scale: float = 1.0, unit: str = "", decimals: int = 3) -> str:
    """ "+0.123 ± 0.010 (higher in 5 of 5 seeds)" or "−0.04 ± 0.01 (lower in 4 of 5 seeds)" from a ``paired_margin``
    result, values times ``scale``; the count is of the seeds whose difference has the mean's sign."""
    mean, std = m["mean"] * scale, m["std"] * scale
    sign = "+" if mean >= 0 else "−"
    side, count = ("higher", m["holds"]) if mean >= 0 else ("lower", m["below"])
    return f"{sign}{abs(mean):.{decimals}f} ± {std:.{decimals}f}{unit} ({side} in {int(count)} of {int(m['n'])} seeds)"


def _check_bootstrap(n_boot: int, level: float) -> None:
    """One-line errors for a bad resample count or confidence level."""
    check_positive("n_boot", n_boot)
    check_range("level", level, 0.5, 0.999)


def _interval(point: float, draws: np.ndarray, level: float) -> tuple[float, float, float]:
    """(point, low, high): the percentile interval of ``draws`` recentred on ``point`` (the draws shifted by their bias,
    mean(draws) − point, which resampling adds to statistics such as a maximum). Nothing is clipped: the interval
    keeps the draws' width and shape, and contains the point unless the draws are extremely skewed."""
    tail = (1 - level) / 2
    centred = draws - (float(np.mean(draws)) - point)
    low, high = np.quantile(centred, [tail, 1 - tail])
    return point, float(low), float(high)


def bootstrap_ci(
    units: list[np.ndarray] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, low, high): ``statistic`` of the stacked units, and its percentile interval over resamples.

    ``units`` holds one entry per document (e.g. its routing counts [layers, experts]); each resample draws as many
    documents with replacement and applies ``statistic`` to the stacked draw [documents, ...].
    """
    units = np.asarray(units)
    if len(units) < 2:
        raise MoeError(f"bootstrap needs at least 2 documents; got {len(units)}")
    _check_bootstrap(n_boot, level)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(units[rng.integers(0, len(units), len(units))]) for _ in range(n_boot)])
    return _interval(float(statistic(units)), draws, level)


def _check_groups(groups: dict[str, np.ndarray], n_boot: int, level: float) -> None:
    """One-line errors for a group with fewer than 2 documents, a bad resample count or confidence level."""
    for name, units in groups.items():
        if len(units) < 2:
            raise MoeError(f"bootstrap needs at least 2 documents per group; {name!r} has {len(units)}")
    _check_bootstrap(n_boot, level)


def grouped_bootstrap_ci(
    groups: dict[str, np.ndarray],
    statistic: Callable[[dict[str, np.ndarray]], float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Like ``bootstrap_ci`` with documents resampled *within* each group (e.g. each domain keeps its document count)."""
    _check_groups(groups, n_boot, level)
    rng = np.random.default_rng(seed)
    groups = {k: np.asarray(v) for k, v in groups.items()}
    draws = np.array(
        [statistic({k: v[rng.integers(0, len(v), len(v))] for k, v in groups.items()}) for _ in range(n_boot)]
    )
    return _interval(float(statistic(groups)), draws, level)


def two_stage_bootstrap_ci(
    groups: dict[str, np.ndarray],
    statistic: Callable[[dict[str, np.ndarray]], float],
    *,
    seed_axis: int,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Like ``grouped_bootstrap_ci``, but each resample first draws the trained models' seeds with replacement (one
    draw along ``seed_axis`` shared by every group: the seeds are the same models in every domain), then documents
    within each group; so the interval holds the spread between seeds as well as between documents."""
    n_seeds = {v.shape[seed_axis] for v in groups.values()}
    if len(n_seeds) != 1:
        raise MoeError(f"every group needs the same number of seeds on axis {seed_axis}; got {sorted(n_seeds)}")
    (n,) = n_seeds
    if n < 2:
        raise MoeError(f"a two-stage bootstrap needs at least 2 seeds; got {n}")
    _check_groups(groups, n_boot, level)
    rng = np.random.default_rng(seed)
    groups = {k: np.asarray(v) for k, v in groups.items()}
    draws = []
    for _ in range(n_boot):
        seeds = rng.integers(0, n, n)
        draws.append(
            statistic(
                {k: np.take(v, seeds, axis=seed_axis)[rng.integers(0, len(v), len(v))] for k, v in groups.items()}
            )
        )
    return _interval(float(statistic(groups)), np.array(draws), level)


def resampled_draws(statistic, groups: list[np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """``statistic(items per group)`` on each of ``n_boot`` resamples of every group's items (with replacement, each
    group keeping its size): [n_boot, ...] (the statistic's shape)."""
    rng = np.random.default_rng(seed)
    return np.array([statistic([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(n_boot)])


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of 0 from a statistic's resampled draws: twice the smaller tail at 0, at most 1."""
    return float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean())))


def resampled_interval(statistic, groups: list[np.ndarray], n_boot: int, seed: int) -> tuple[float, float]:
    """2.5 / 97.5 percentiles of ``statistic`` over ``resampled_draws``: the 95 % interval over prompts of notebook
    08."""
    low, high = np.percentile(resampled_draws(statistic, groups, n_boot, seed), [2.5, 97.5])
    return float(low), float(high)


def every_seed_power(effect: float, spread: float, n: int) -> float:
    """Chance that a rule "the difference is positive in every one of ``n`` seeds" holds when the true mean difference
    is ``effect`` and seeds scatter normally around it with standard deviation ``spread``: Φ(effect/spread)ⁿ."""
    from math import erf, sqrt

    if spread <= 0:
        return float(effect > 0)
    return (0.5 * (1 + erf(effect / spread / sqrt(2)))) ** n


def every_seed_detectable(spread: float, n: int, power: float = 0.8) -> float:
    """The smallest true mean difference the every-seed rule detects with ``power`` (``every_seed_power`` inverted):
    spread · Φ⁻¹(power^(1/n)), by bisection."""
    low, high = 0.0, 50.0 * max(spread, 1e-12)
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if every_seed_power(mid, spread, n) < power else (low, mid)
    return high


def mean_test(values) -> dict:
    """The mean of ``values`` (per-item paired differences) with its 95 % t-interval and the two-sided one-sample
    t-test's p-value against 0: {mean, low, high, p, n} (nan where n < 2 or the values do not vary)."""
    values = np.asarray(values, dtype=float)
    mean, low, high = t_interval(values)
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else float("nan")
    if n < 2 or not sd > 0:
        p = float("nan") if n < 2 else float(mean == 0) if sd == 0 else float("nan")
    else:
        p = 2 * (1 - student_t_cdf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {"mean": mean, "low": low, "high": high, "p": float(p), "n": n}


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (nan stays nan and does not count towards the family)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    live = np.flatnonzero(~np.isnan(p))
    order = live[np.argsort(p[live])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
