"""moe_utils.stats: seed lists, summaries over seeds, paired margins, bootstrap intervals and the mean ± std text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moe_utils.errors import MoeError
from moe_utils.stats import (
    bootstrap_ci,
    bootstrap_p,
    group_stats,
    grouped_bootstrap_ci,
    margin_text,
    mean_std,
    mean_std_text,
    paired_margin,
    resampled_draws,
    resampled_interval,
    seed_list,
    seed_summary,
    two_stage_bootstrap_ci,
)


def test_seed_list_starts_at_the_notebook_seed():
    assert seed_list(7, 3) == [7, 8, 9]
    with pytest.raises(MoeError, match="N_SEEDS=0"):
        seed_list(0, 0)


def test_seed_summary_is_mean_and_sample_std_per_group():
    frame = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "acc": [0.1, 0.2, 0.6, 1.0, 1.0, 1.0]})
    out = seed_summary(frame, ["run"], ["acc"]).set_index("run")
    assert out.loc["a", "acc_mean"] == pytest.approx(0.3)
    assert out.loc["a", "acc_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert out.loc["b", "acc_std"] == 0 and out.loc["a", "n_seeds"] == 3


def test_paired_margin_pairs_by_seed_not_by_row_order():
    frame = pd.DataFrame(
        {"run": ["a", "a", "a", "b", "b", "b"], "seed": [0, 1, 2, 2, 0, 1], "acc": [1.0, 2.0, 3.0, 2.5, 1.5, 1.0]}
    )
    m = paired_margin(frame, "run", "a", "b", "acc")  # differences by seed: 1-1.5, 2-1, 3-2.5
    assert m["mean"] == pytest.approx(np.mean([-0.5, 1.0, 0.5])) and m["holds"] == 2 and m["n"] == 3
    with pytest.raises(MoeError, match="no rows"):
        paired_margin(frame, "run", "a", "c", "acc")


def mean_of(draw: np.ndarray) -> float:
    return float(draw.mean())


def test_interval_contains_the_point_estimate_and_shrinks_with_more_documents():
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 0.5, 20), rng.normal(1.0, 0.5, 2000)
    p_few, lo_few, hi_few = bootstrap_ci(few, mean_of, n_boot=500, seed=1)
    p_many, lo_many, hi_many = bootstrap_ci(many, mean_of, n_boot=500, seed=1)
    assert lo_few <= p_few <= hi_few and lo_many <= p_many <= hi_many
    assert (hi_many - lo_many) < (hi_few - lo_few) / 5  # ~ 1/sqrt(100) of the width
    assert bootstrap_ci(few, mean_of, n_boot=200, seed=3) == bootstrap_ci(few, mean_of, n_boot=200, seed=3)
    with pytest.raises(MoeError, match="at least 2 documents"):
        bootstrap_ci(few[:1], mean_of)


def test_grouped_bootstrap_resamples_within_groups():
    groups = {"a": np.zeros(30), "b": np.ones(30)}
    point, low, high = grouped_bootstrap_ci(groups, lambda g: float(g["b"].mean() - g["a"].mean()), n_boot=100)
    assert point == low == high == 1.0  # every resample keeps 30 zeros and 30 ones


def test_the_two_stage_bootstrap_widens_when_seeds_disagree():
    rng = np.random.default_rng(0)
    docs = rng.normal(0.0, 0.1, (25, 1, 1))  # [documents, methods, seeds]: one domain, one method

    def seeds(offsets):
        return {"d": docs + np.asarray(offsets, dtype=float).reshape(1, 1, -1)}  # the same documents, seed offsets

    statistic = lambda g: float(g["d"].mean())  # noqa: E731
    agree = two_stage_bootstrap_ci(seeds([0, 0, 0, 0, 0]), statistic, seed_axis=2, n_boot=400, seed=1)
    disagree = two_stage_bootstrap_ci(seeds([-0.3, -0.1, 0, 0.1, 0.3]), statistic, seed_axis=2, n_boot=400, seed=1)
    documents_only = grouped_bootstrap_ci(seeds([-0.3, -0.1, 0, 0.1, 0.3]), statistic, n_boot=400, seed=1)
    width = lambda ci: ci[2] - ci[1]  # noqa: E731
    assert width(disagree) > 3 * width(agree) and width(disagree) > 3 * width(documents_only)
    assert agree[1] <= agree[0] <= agree[2] and disagree[1] <= disagree[0] <= disagree[2]
    with pytest.raises(MoeError, match="at least 2 seeds"):
        two_stage_bootstrap_ci({"d": docs}, statistic, seed_axis=2)


def test_intervals_are_recentred_not_clipped_so_they_hold_a_biased_statistic():
    rng = np.random.default_rng(3)
    units = rng.normal(0.0, 1.0, (8, 4))  # 8 documents, 4 experts: the max over experts' means is biased upward
    statistic = lambda u: float(u.mean(0).max())  # noqa: E731
    point, low, high = bootstrap_ci(units, statistic, n_boot=2000, seed=0)
    draws = np.array([statistic(units[rng.integers(0, 8, 8)]) for _ in range(2000)])
    raw_low, raw_high = np.quantile(draws, [0.025, 0.975])
    assert draws.mean() > point  # resampling moves a maximum up: the raw interval sits too high
    assert (low + high) / 2 < (raw_low + raw_high) / 2  # the recentred one is moved back by that bias
    assert low < point < high  # inside, and not at an end (a clipped interval would end at the point)
    assert high - low == pytest.approx(np.quantile(draws, 0.975) - np.quantile(draws, 0.025), rel=0.15)
    for trial in range(20):  # never excludes its point estimate, over many data sets
        data = rng.exponential(1.0, (6, 3))
        p, lo, hi = bootstrap_ci(data, statistic, n_boot=300, seed=trial)
        assert lo <= p <= hi


def test_group_stats_gives_mean_sample_std_and_count():
    frame = pd.DataFrame({"model": ["a", "a", "b"], "acc": [0.2, 0.4, 1.0]})
    out = group_stats(frame, ["model"], "acc").set_index("model")
    assert out.loc["a", "mean"] == pytest.approx(0.3) and out.loc["a", "std"] == pytest.approx(
        np.std([0.2, 0.4], ddof=1)
    )
    assert out.loc["a", "count"] == 2 and np.isnan(out.loc["b", "std"])


def test_one_formatter_for_mean_and_std():
    assert mean_std(0.7361, 0.0123) == "0.736 ± 0.012"
    assert mean_std(-0.31, 0.5, 1) == "−0.3 ± 0.5"  # a real minus sign
    assert mean_std_text(pd.Series([0.1, 0.3]), 2) == mean_std(0.2, float(np.std([0.1, 0.3], ddof=1)), 2)
    assert mean_std_text(pd.Series([1.0]), 1).endswith("± nan")  # one seed has no spread


def test_margin_text_counts_the_seeds_on_the_mean_side():
    up = {"mean": 0.12, "std": 0.01, "holds": 4, "below": 1, "n": 5}
    assert margin_text(up) == "+0.120 ± 0.010 (higher in 4 of 5 seeds)"
    down = {"mean": -0.04, "std": 0.02, "holds": 1, "below": 3, "n": 5}
    assert margin_text(down, scale=100, unit=" points", decimals=1) == "−4.0 ± 2.0 points (lower in 3 of 5 seeds)"


def test_the_every_seed_rule_has_the_power_of_n_independent_coin_flips_biased_by_the_effect():
    from moe_utils.stats import every_seed_detectable, every_seed_power

    assert every_seed_power(0.0, 1.0, 6) == pytest.approx(0.5**6)  # no effect: all 6 positive by chance
    assert every_seed_power(1.0, 1.0, 1) == pytest.approx(0.8413447, abs=1e-6)  # Φ(1)
    assert every_seed_power(1.0, 1.0, 6) < every_seed_power(1.0, 1.0, 3) < every_seed_power(2.0, 1.0, 3)
    detectable = every_seed_detectable(0.5, 6)  # Φ⁻¹(0.8^(1/6)) = 1.7925 seed standard deviations
    assert detectable == pytest.approx(0.5 * 1.7925, abs=1e-3)
    assert every_seed_power(detectable, 0.5, 6) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(0)  # the closed form against simulation
    draws = rng.normal(detectable, 0.5, size=(20000, 6))
    assert (draws > 0).all(1).mean() == pytest.approx(0.8, abs=0.01)


def test_student_t_quantiles_match_the_textbook_table():
    from moe_utils.stats import student_t_cdf, student_t_quantile

    table = {(0.975, 1): 12.706, (0.975, 4): 2.776, (0.975, 9): 2.262, (0.995, 30): 2.750, (0.95, 120): 1.658}
    for (p, df), value in table.items():
        assert student_t_quantile(p, df) == pytest.approx(value, abs=5e-4)
        assert student_t_quantile(1 - p, df) == pytest.approx(-value, abs=5e-4)
    assert student_t_cdf(0.0, 7) == pytest.approx(0.5)


def test_the_t_interval_of_paired_differences_against_a_hand_computation():
    from moe_utils.stats import paired_margin, t_interval

    diffs = [-0.067, -0.047, -0.035, -0.096, 0.026]  # five seeds' differences: mean −0.0438, sd 0.04534
    mean, low, high = t_interval(diffs)
    half = 2.7764 * 0.045339 / 5**0.5
    assert mean == pytest.approx(-0.0438) and low == pytest.approx(-0.0438 - half, abs=1e-4)
    assert high == pytest.approx(-0.0438 + half, abs=1e-4) and low < 0 < high  # the interval includes 0
    rows = pd.DataFrame(
        [{"seed": s, "method": m, "v": (d if m == "a" else 0.0)} for s, d in enumerate(diffs) for m in ("a", "b")]
    )
    m = paired_margin(rows, "method", "a", "b", "v")
    assert m["t"] == pytest.approx(-2.160, abs=1e-3) and (m["t_low"], m["t_high"]) == pytest.approx((low, high))
    assert all(v != v for v in t_interval([0.1])[1:])  # one seed: no interval (nan)


def test_resampled_draws_keep_each_groups_size_and_only_its_items():
    groups = [np.arange(3), np.arange(10, 15)]
    draws = resampled_draws(lambda gs: [len(gs[0]), len(gs[1]), gs[0].max(), gs[1].min()], groups, 50, seed=1)
    assert draws.shape == (50, 4)
    assert (
        (draws[:, 0] == 3).all() and (draws[:, 1] == 5).all() and (draws[:, 2] < 3).all() and (draws[:, 3] >= 10).all()
    )
    values = np.array([0.0, 1.0, 5.0])
    low, high = resampled_interval(lambda gs: values[gs[0]].mean(), [np.arange(3)], 200, seed=2)
    assert (low, high) == tuple(
        np.percentile(resampled_draws(lambda gs: values[gs[0]].mean(), [np.arange(3)], 200, 2), [2.5, 97.5])
    )


def test_bootstrap_p_is_twice_the_smaller_tail_at_zero():
    assert bootstrap_p(np.array([0.1, 0.2, 0.3, 0.4])) == 0.0
    assert bootstrap_p(np.array([-0.1, 0.2, 0.3, 0.4])) == 0.5
    assert bootstrap_p(np.array([-1.0, 1.0])) == 1.0
