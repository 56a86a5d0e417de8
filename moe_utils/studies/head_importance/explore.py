"""Notebook 06's explorer: one task's layer × head importance map by one method, one head picked out, and that
task's ablation."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Rectangle

from ...io import paths
from ...io.explorer import check_choices, explore
from .tables import HeadImportanceTables

MAPS = ("probe_importance", "mask_importance")  # the two methods' maps in HeadImportanceTables


def explore_tables(folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """Both methods' importance shares (first seed) and the ablation table."""
    saved = HeadImportanceTables.load(folder or paths.figures_dir())
    shares = pd.concat([saved.read_back(key) for key in MAPS], ignore_index=True)
    return {"shares": shares, "ablation": saved.read_back("ablation")}


def controls(tables: dict) -> dict[str, list]:
    """Task, method and head (``L<layer> H<head>``, both numbered from 1 as in the tables and figures)."""
    shares = tables["shares"]
    heads = shares[["layer", "head"]].drop_duplicates().sort_values(["layer", "head"])
    return {
        "task": list(dict.fromkeys(shares["task"])),
        "method": list(dict.fromkeys(shares["method"])),
        "head": [f"L{layer} H{head}" for layer, head in heads.itertuples(index=False)],
    }


def head_view(tables: dict, task: str, method: str, head: str) -> plt.Figure:
    """Left: the task's importance shares (layers × heads) by ``method``, the chosen head boxed, with its share and
    rank; right: the task's accuracy drop when its top heads, the control's or random heads are masked."""
    check_choices(controls(tables), dict(task=task, method=method, head=head))
    shares = tables["shares"]
    part = shares[(shares["task"] == task) & (shares["method"] == method)]
    grid = part.pivot(index="layer", columns="head", values="share")
    layer, index = (int(v[1:]) for v in head.split())
    share = float(grid.loc[layer, index])
    rank = int((part["share"] > share).sum()) + 1
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), width_ratios=[1, 1.3])
    extent = (0.5, grid.shape[1] + 0.5, grid.shape[0] + 0.5, 0.5)  # layers and heads numbered from 1
    image = left.imshow(grid.to_numpy(), cmap="viridis", aspect="auto", extent=extent)
    left.add_patch(Rectangle((index - 0.5, layer - 0.5), 1, 1, fill=False, ec="red", lw=2))
    left.set(xlabel="head", ylabel="layer", xticks=list(grid.columns), yticks=list(grid.index))
    left.set_title(f"{task}, {method}\n{head}: share {share:.3f}, rank {rank} of {grid.size}", fontsize=9)
    fig.colorbar(image, ax=left, label="importance share")
    ablation = tables["ablation"]
    rows = ablation[ablation["task"] == task]
    colours = [
        ("C3" if c.startswith("top") else "lightsalmon") if method in c else "lightgrey" for c in rows["condition"]
    ]
    right.barh(range(len(rows)), rows["drop"], color=colours)
    right.set_yticks(range(len(rows)), rows["condition"], fontsize=8)
    right.invert_yaxis()
    right.axvline(0, color="k", lw=0.8)
    right.set(xlabel="accuracy drop on the evaluation half (first seed)")
    right.set_title(f"{task}: masking heads (this method's top heads red, its layer-matched control pale)", fontsize=9)
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Heatmap of {choices['task']}'s head importance by {choices['method']} over layers and heads, head "
        f"{choices['head']} boxed; beside it the accuracy drop when {choices['task']}'s top heads or random heads are masked."
    )


def explorer(folder: Path | None = None):
    """Notebook 06's explorer on the tables in ``folder`` (default: this run's figures folder)."""
    tables = explore_tables(folder)
    options = controls(tables)
    shares = tables["shares"]
    first = shares[(shares["task"] == options["task"][0]) & (shares["method"] == options["method"][0])]
    top = first.loc[first["share"].idxmax()]  # the default: the first task's most important head
    view = lambda **c: head_view(tables, **c)  # noqa: E731
    return explore(view, options, alt_text, head=f"L{int(top['layer'])} H{int(top['head'])}")
