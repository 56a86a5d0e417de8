"""Bootstrap intervals over documents, and parallel seed runs that equal serial ones."""
from __future__ import annotations

import numpy as np
import pytest

from moe_utils.errors import MoeError
from moe_utils.runtime import run_parallel
from moe_utils.studies.bootstrap import bootstrap_ci, grouped_bootstrap_ci


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


def seeded_draw(seed: int) -> list[float]:
    """A job that seeds its own randomness (module level, so spawned workers can import it)."""
    import torch

    return torch.randn(3, generator=torch.Generator().manual_seed(seed)).tolist() + [float(torch.get_num_threads())]


def test_parallel_runs_equal_serial_runs():
    jobs = [{"seed": k} for k in range(3)]
    parallel, serial = run_parallel(seeded_draw, jobs, workers=2), run_parallel(seeded_draw, jobs, workers=1)
    assert [p[:3] for p in parallel] == [s[:3] for s in serial]
    assert all(p[3] == 1.0 for p in parallel)  # one torch thread per worker
    with pytest.raises(MoeError, match="WORKERS=0"):
        run_parallel(seeded_draw, jobs, workers=0)
