"""Notebook 10's figures, each drawn from exactly the table saved beside it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ...datasets.cogqa import FUNCTIONS
from ...io.figures import slant_labels


def importance_grids(importance: pd.DataFrame, title: str) -> plt.Figure:
    """The paper's per-function maps, 2 rows per method (probe, shuffled-label probe) × 4 functions: shares of
    |gradient × activation|, one colour scale per method."""
    methods = list(dict.fromkeys(importance["method"]))
    fig, axes = plt.subplots(2 * len(methods), 4, figsize=(13, 6.5 * len(methods)), sharex=True, sharey=True)
    for r, method in enumerate(methods):
        part = importance[importance["method"] == method]
        vmax = float(part["share"].max())
        for ax, function in zip(axes[2 * r : 2 * r + 2].flat, FUNCTIONS):
            grid = part[part["function"] == function].pivot(index="layer", columns="head", values="share")
            sns.heatmap(grid, ax=ax, vmin=0, vmax=vmax, cmap="viridis", cbar=False)
            ax.set_title(f"{function}\n({method})", fontsize=8)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def margin_bars(margins: pd.DataFrame, measure: str, title: str) -> plt.Figure:
    """Per function and comparison: the margin (drop of the first head set − drop of the control) with its 95 %
    t-interval over the function's items; a star where Holm's adjusted p < 0.05."""
    part = margins[margins["measure"] == measure]
    comparisons = list(dict.fromkeys(part["comparison"]))
    fig, ax = plt.subplots(figsize=(12, 4.2))
    width = 0.8 / len(comparisons)
    for c, comparison in enumerate(comparisons):
        rows = part[part["comparison"] == comparison].set_index("function").reindex(FUNCTIONS)
        x = np.arange(len(FUNCTIONS)) + (c - (len(comparisons) - 1) / 2) * width
        ax.bar(x, rows["mean"], width, label=comparison)
        ax.errorbar(
            x,
            rows["mean"],
            yerr=[rows["mean"] - rows["low"], rows["high"] - rows["mean"]],
            fmt="none",
            ecolor="k",
            capsize=2,
            lw=0.8,
        )
        for xi, (m, high, p) in enumerate(zip(rows["mean"], rows["high"], rows["p (Holm)"])):
            if p < 0.05:
                ax.text(x[xi], max(m, high), "*", ha="center", va="bottom")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(FUNCTIONS)), FUNCTIONS, fontsize=8)
    slant_labels(ax)
    ax.set_ylabel(f"margin in {measure} drop")
    ax.set_title(title + " (* Holm-adjusted p < 0.05)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def depth_plot(depth: pd.DataFrame, title: str) -> plt.Figure:
    """Each function's importance-weighted mean layer with its bootstrap interval, probe beside shuffled-label probe."""
    methods = list(dict.fromkeys(depth["method"]))
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for m, method in enumerate(methods):
        rows = depth[(depth["method"] == method) & depth["function"].isin(FUNCTIONS)].set_index("function")
        rows = rows.reindex(FUNCTIONS)
        x = np.arange(len(FUNCTIONS)) + (m - 0.5) * 0.3
        ax.errorbar(
            x,
            rows["depth"],
            yerr=[rows["depth"] - rows["low"], rows["high"] - rows["depth"]],
            fmt="o",
            capsize=3,
            label=method,
        )
    ax.set_xticks(np.arange(len(FUNCTIONS)), FUNCTIONS, fontsize=8)
    slant_labels(ax)
    ax.set_ylabel("depth centroid (layer, from 1)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def every_figure(tables) -> dict:
    """Notebook 10's figures of ``tables``: table key -> (figure, the numbers it plots)."""
    model = tables.info["model"]
    return {
        "importance": (importance_grids(tables.importance, f"{model}: CogQA head importance"), tables.importance),
        "margins": (
            margin_bars(tables.margins, "log-prob", f"{model}: masked head sets against controls"),
            tables.margins,
        ),
        "depth": (depth_plot(tables.depth, f"{model}: depth of each function's heads"), tables.depth),
    }
