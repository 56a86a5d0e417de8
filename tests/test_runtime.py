"""Profile sizes, progress that ends in one line, the argument checks, and figure descriptions."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from moe_utils.datasets.mnist_cifar import Split, random_share
from moe_utils.errors import MoeError, check_at_most, check_divides, check_int, parse_positive_ints
from moe_utils.io.figures import describe_figure
from moe_utils.runtime import PROGRESS_ENV, ClosingLine, profile_sizes, progress, resolve_device


def test_quick_caps_the_full_sizes_and_full_keeps_them():
    quick = {"steps": 15, "share": 0.1}
    assert profile_sizes("full", quick, steps=500, share=1.0, other=3) == {"steps": 500, "share": 1.0, "other": 3}
    assert profile_sizes("quick", quick, steps=500, share=1.0, other=3) == {"steps": 15, "share": 0.1, "other": 3}
    assert profile_sizes("quick", quick, steps=4, share=1.0) == {"steps": 4, "share": 0.1}  # a smaller full value stays
    with pytest.raises(MoeError, match="PROFILE='fast'"):
        profile_sizes("fast", quick, steps=1, share=1.0)
    with pytest.raises(MoeError, match="no full-profile value"):
        profile_sizes("quick", quick, steps=1)


def test_random_share_draws_only_below_one():
    split = Split(torch.zeros(10, 2, 2, dtype=torch.uint8), torch.arange(10), torch.ones(10, dtype=torch.bool))
    generator = torch.Generator().manual_seed(0)
    assert random_share(split, 1.0, generator) is split
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())  # no draw
    assert len(random_share(split, 0.3, generator)) == 3


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


def test_checks_name_the_parameter():
    assert check_int("SEED", -3) == -3
    with pytest.raises(MoeError, match="SEED='x' is not allowed; it must be an integer"):
        check_int("SEED", "x")
    with pytest.raises(MoeError, match="TOP_K=9 is not allowed; it must be at most N_EXPERTS=8"):
        check_at_most("TOP_K", 9, "N_EXPERTS", 8)
    with pytest.raises(MoeError, match="N_HEADS=5 is not allowed; it must divide D_MODEL=48"):
        check_divides("N_HEADS", 5, "D_MODEL", 48)
    assert parse_positive_ints("SWEEP_EXPERTS", "1, 2,8") == [1, 2, 8]
    with pytest.raises(MoeError, match="SWEEP_EXPERTS='1,x'"):
        parse_positive_ints("SWEEP_EXPERTS", "1,x")


def test_device_cuda_is_refused_where_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(MoeError, match="DEVICE='cuda' is not allowed; this machine has no CUDA device"):
        resolve_device("cuda")


def test_a_figure_is_described_by_its_titles_and_labels():
    fig, ax = plt.subplots()
    ax.set(title="Jaccard vs σ", xlabel="σ", ylabel="mean Jaccard")
    text = describe_figure(fig, "04_jaccard")
    assert text.startswith("Figure 04_jaccard: Jaccard vs σ: mean Jaccard vs σ") and "figures/04_jaccard" in text
    plt.close(fig)


def test_only_if_runs_or_skips_a_cell_and_keeps_its_errors(capsys):
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "moe_utils.io.magics")
    ip.user_ns.update(own=True, ran=[])
    ip.run_cell_magic("only_if", "own", "ran.append(1)")
    ip.run_cell_magic("only_if", "not own", "ran.append(2)")
    assert ip.user_ns["ran"] == [1] and "(skipped: not own is false)" in capsys.readouterr().out
    with pytest.raises(ZeroDivisionError):
        ip.run_cell_magic("only_if", "own", "1 / 0")
