"""Notebook 10's explorer: one function's head-importance map (probe or shuffled-label probe) with the heads each
ablation masked, and its test items' answer log-prob before and after masking the top heads and random heads."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ...datasets.cogqa import FUNCTIONS
from ...io import paths
from ...io.explorer import check_choices, explore
from .settings import METHODS, RANDOM, SHUFFLED_TOP, TOP
from .tables import CognitiveMirrorsTables


def explore_tables(name: str, folder: Path | None = None) -> CognitiveMirrorsTables:
    """A run's saved tables (prefix ``name``: ``10_smollm2``) from ``folder`` (default: this run's figures)."""
    tables = CognitiveMirrorsTables.load(folder or paths.figures_dir(), prefix=name)
    for key in ("importance", "heads", "items"):
        tables.read_back(key)  # a one-line error naming the file when the run did not save it
    return tables


def controls(tables: CognitiveMirrorsTables) -> dict[str, list]:
    """The function and the probe whose map is drawn."""
    present = set(tables.importance["function"])
    return {"function": [f for f in FUNCTIONS if f in present], "method": list(METHODS)}


def function_view(tables: CognitiveMirrorsTables, function: str, method: str) -> plt.Figure:
    """Left: the map with the masked top heads outlined; right: each test item's log-prob, baseline against masked."""
    check_choices(controls(tables), dict(function=function, method=method))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), width_ratios=[1, 1.2])
    part = tables.importance[(tables.importance["method"] == method) & (tables.importance["function"] == function)]
    sns.heatmap(part.pivot(index="layer", columns="head", values="share"), ax=left, cmap="viridis")
    condition = TOP if method == METHODS[0] else SHUFFLED_TOP
    heads = tables.heads[(tables.heads["function"] == function) & (tables.heads["condition"] == condition)]
    for row in heads.itertuples():
        left.add_patch(plt.Rectangle((row.head - 1, row.layer - 1), 1, 1, fill=False, ec="red", lw=1.2))
    left.set_title(f"{function} ({method}): {len(heads)} heads masked (red)", fontsize=9)
    items = tables.items[tables.items["function"] == function]
    base = items[items["condition"] == "baseline"].set_index("item")["log-prob"]
    for shown, colour in ((condition, "tab:red"), (RANDOM, "0.5")):
        after = items[items["condition"] == shown].set_index("item")["log-prob"].reindex(base.index)
        right.scatter(base, after, s=18, color=colour, label=f"{shown} heads masked")
    lims = [float(np.nanmin(base)) - 0.5, 0.1]
    right.plot(lims, lims, "k:", lw=0.8)
    right.set(xlabel="answer log-prob per token, no mask", ylabel="with heads masked")
    right.set_title("each test item (below the diagonal: masking hurt)", fontsize=9)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Heatmap of {choices['function']}'s head importance ({choices['method']}) with the masked heads outlined, and "
        "a scatter of each test item's answer log-prob before against after masking them and random heads."
    )


def explorer(name: str, folder: Path | None = None):
    """Notebook 10's explorer on the run saved under prefix ``name`` (``10_smollm2``)."""
    tables = explore_tables(name, folder)
    view = lambda **c: function_view(tables, **c)  # noqa: E731
    return explore(view, controls(tables), alt_text)
