"""save_fig writes the picture and its numbers together, atomically."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from moe_utils.errors import MoeError
from moe_utils.io import paths
from moe_utils.io.figures import describe_figure, save_fig, save_table


def test_save_fig_writes_png_and_csv(figures_tmp):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    save_fig(fig, "99_line", pd.DataFrame({"x": [1, 2], "y": [3, 4]}))
    assert (figures_tmp / "99_line.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(figures_tmp / "99_line.csv")["y"].tolist() == [3, 4]
    save_table({"a": 1}, "99_meta")
    assert (figures_tmp / "99_meta.json").exists()


def test_save_fig_refuses_a_figure_without_numbers(figures_tmp):
    fig, _ = plt.subplots()
    with pytest.raises(MoeError, match="needs the numbers"):
        save_fig(fig, "99_empty", pd.DataFrame())
    assert not list(figures_tmp.glob("99_empty*")) if figures_tmp.exists() else True


def test_failed_write_leaves_nothing_behind(figures_tmp, monkeypatch):
    fig, _ = plt.subplots()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        save_fig(fig, "99_broken", pd.DataFrame({"x": [1]}))
    assert not list(figures_tmp.glob("99_broken.png")) and not list(figures_tmp.glob(".*"))


def test_a_figure_is_described_by_its_titles_and_labels():
    fig, ax = plt.subplots()
    ax.set(title="Jaccard vs σ", xlabel="σ", ylabel="mean Jaccard")
    text = describe_figure(fig, "04_jaccard")
    assert text.startswith("Figure 04_jaccard: Jaccard vs σ: mean Jaccard vs σ") and "figures/04_jaccard" in text
    plt.close(fig)


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umask_mode(figures_tmp):
    import os
    import stat

    save_table({"a": 1}, "99_mode")
    path = figures_tmp / "99_mode.json"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # 0644 under umask 022, not mkstemp's 0600
    os.chmod(path, 0o640)
    save_table({"a": 2}, "99_mode")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and '"a": 2' in path.read_text()


def test_a_notebook_run_with_other_settings_writes_to_a_run_folder(tmp_path, monkeypatch, capsys):
    from moe_utils.io import paths
    from moe_utils.studies.four_models.settings import FourModelsSettings

    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    try:
        FourModelsSettings.for_notebook({"PROFILE": "quick", "EPOCHS": 3})  # as papermill -p PROFILE quick would
        line = capsys.readouterr().out.strip()
        assert (
            line.startswith("PROFILE='quick', EPOCHS=3: not the committed run, so this run's figures")
            and "\n" not in line
        )
        assert paths.figures_dir().is_relative_to(paths.RUNS_DIR / "02_four_models")
        assert paths.figures_dir().name in line
        FourModelsSettings.for_notebook({"PROFILE": "full"})  # the committed configuration: figures/
        assert paths.figures_dir() == paths.REPO_ROOT / "figures" and capsys.readouterr().out == ""
        FourModelsSettings.from_parameters({"PROFILE": "quick"})  # built alone: no side effect, nothing chosen
        assert paths.figures_dir() == paths.REPO_ROOT / "figures"
    finally:
        paths.set_run_folder(None)


def test_committed_tables_number_layers_experts_heads_and_tokens_from_1():
    """One numbering: every committed table counts layers, experts, heads and tokens from 1, as the figures do."""
    import re
    from pathlib import Path

    numbered = ("layer", "expert", "head", "token")
    figures = Path(__file__).resolve().parents[1] / "figures"
    # notebook 09's MoE layers are the model's top layers: numbered as in the whole model (from 1), they start higher
    first_layer = {"09_": json.loads((figures / "09_run.json").read_text())["first MoE layer"]}
    for path in sorted(figures.glob("*.csv")):
        table = pd.read_csv(path)
        zero_named = [c for c in table.columns if re.search(r"(layer|expert|head)_?0$", str(c))]
        assert not zero_named, f"{path.name}: column {zero_named[0]!r} counts from 0"
        for column in set(numbered) & set(table.columns):
            values = pd.to_numeric(table[column], errors="coerce").dropna()
            start = first_layer.get(path.name[:3], 1) if column == "layer" else 1
            assert values.empty or values.min() == start, f"{path.name}: {column} starts at {values.min()}, not {start}"


def test_overlapping_text_is_found_and_said_in_one_line(tmp_path, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    from moe_utils.io.layout_check import overlapping_text

    fig, axes = plt.subplots(1, 2, figsize=(6, 2))
    axes[0].set_title("a long title that runs into the next panel's title")
    axes[1].set_title("the next panel's title")
    assert overlapping_text(fig) == ["axes 1 title / axes 2 title"]
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(range(1, 33), range(32))
    ax.set_xticks(range(1, 33), [str(i) for i in range(1, 33)])  # 32 expert numbers on a narrow axis run together
    assert "axes 1 x tick '1' / axes 1 x tick '2'" in overlapping_text(fig)
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.plot([0, 1], label="a")
    ax.set(title="fine", xlabel="x", ylabel="y")
    ax.legend()
    assert overlapping_text(fig) == []
    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path))
    fig, axes = plt.subplots(1, 2, figsize=(6, 2))
    axes[0].set_title("a long title that runs into the next panel's title")
    axes[1].set_title("the next panel's title")
    save_fig(fig, "99_clash", pd.DataFrame({"x": [1]}))
    assert capsys.readouterr().out.strip() == "figure 99_clash: overlapping text: axes 1 title / axes 2 title"
