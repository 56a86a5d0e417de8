"""Profile sizes, progress that ends in one line, the argument checks, and figure descriptions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from moe_utils.datasets.mnist_cifar import Split, random_share
from moe_utils.errors import MoeError
from moe_utils.runtime import PROGRESS_ENV, ClosingLine, progress, resolve_device, run_parallel


def test_random_share_draws_only_below_one():
    split = Split(torch.zeros(10, 2, 2, dtype=torch.uint8), torch.zeros(10, dtype=torch.long), torch.ones(10).bool())
    generator = torch.Generator().manual_seed(0)
    assert random_share(split, 1.0, generator) is split
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())  # no draw
    assert len(random_share(split, 0.3, generator)) == 3


def test_random_share_keeps_every_class_of_a_small_split():
    labels = torch.tensor([0] * 90 + [1] * 8 + [2, 3])  # [100]: two rare classes
    split = Split(torch.arange(100).view(100, 1, 1).to(torch.uint8), labels, labels < 2, n_classes=4, n_first=2)
    for seed in range(20):
        share = random_share(split, 0.05, torch.Generator().manual_seed(seed))
        assert set(share.labels.tolist()) == {0, 1, 2, 3} and len(set(share.images.flatten().tolist())) == len(share)
        plain = split.subset(torch.randperm(100, generator=torch.Generator().manual_seed(seed))[:5])
        assert torch.equal(share.images[:5], plain.images)  # the plain random share first, unchanged


def test_progress_under_the_pipeline_ends_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "log")
    bar = progress(range(3), desc="epochs")
    assert isinstance(bar, ClosingLine)
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(acc="0.5")
    out = capsys.readouterr().out
    assert out.startswith("epochs: 3/3 done in ") and out.count("\n") == 1
    assert list(progress(range(2), desc="inner", leave=False)) == [0, 1] and capsys.readouterr().out == ""
    monkeypatch.delenv(PROGRESS_ENV)
    assert not isinstance(progress(range(1)), ClosingLine)


def test_device_cuda_is_refused_where_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(MoeError, match="DEVICE='cuda' is not allowed; this machine has no CUDA device"):
        resolve_device("cuda")


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
