"""Notebook 08's figures, each drawn from exactly the table saved beside it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ...datasets.language_tasks import FAMILIES
from ...io.figures import slant_labels
from ...measures import head_plots


def accuracy_bars(accuracy: pd.DataFrame, title: str) -> plt.Figure:
    """Evaluation-half accuracy per family with its bootstrap interval, chance as a grey tick."""
    fig, ax = plt.subplots(figsize=(10, 3.6))
    x = np.arange(len(accuracy))
    colours = ["tab:blue" if flag else "0.7" for flag in accuracy["learned"]]
    ax.bar(x, accuracy["accuracy"], color=colours)
    ax.errorbar(
        x,
        accuracy["accuracy"],
        yerr=[accuracy["accuracy"] - accuracy["low"], accuracy["high"] - accuracy["accuracy"]],
        fmt="none",
        ecolor="k",
        capsize=3,
    )
    ax.scatter(x, accuracy["chance"], marker="_", s=600, color="k", label="chance", zorder=3)
    ax.set_xticks(x, list(accuracy["family"]), fontsize=8)
    slant_labels(ax)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (evaluation half)")
    ax.set_title(title + " — grey bars: at chance (95 % interval includes it)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def importance_grid(importance: pd.DataFrame, method: str, title: str) -> plt.Figure:
    """The source's 2 × 4 grid: one layer × head heatmap of importance shares per family, one colour scale."""
    part = importance[importance["method"] == method]
    vmax = float(part["share"].max())
    fig, axes = plt.subplots(2, 4, figsize=(13, 7), sharex=True, sharey=True)
    for ax, family in zip(axes.flat, FAMILIES):
        grid = part[part["family"] == family].pivot(index="layer", columns="head", values="share")
        sns.heatmap(grid, ax=ax, vmin=0, vmax=vmax, cmap="viridis", cbar=False)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
    fig.colorbar(axes.flat[0].collections[0], ax=axes, shrink=0.6, label="share of all heads' importance")
    fig.suptitle(title)
    return fig


def cross_matrices(cross: pd.DataFrame, title: str) -> plt.Figure:
    """Accuracy drop of every family (columns) when each family's top heads (rows) are masked, per method (the one
    drawing notebooks 06 and 08 share, ``measures.head_plots``), families in FAMILIES order."""
    ordered = cross.set_index("masked").loc[list(FAMILIES)].reset_index()
    return head_plots.cross_matrices(ordered, title)


def ablation_bars(ablation: pd.DataFrame, title: str) -> plt.Figure:
    """Per family and method: the drop from its top heads against layer-matched random heads."""
    methods = list(dict.fromkeys(ablation["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(6.5 * len(methods), 3.8), sharey=True)
    for ax, method in zip(np.atleast_1d(axes), methods):
        part = ablation[ablation["method"] == method]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["top drop"], 0.4, label="top heads")
        ax.bar(x + 0.2, part["random drop (layer-matched)"], 0.4, color="0.6", label="random, layer-matched")
        ax.set_xticks(x, list(part["family"]), fontsize=8)
        slant_labels(ax)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(method)
        ax.set_ylabel("accuracy drop")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def layer_profile_plot(layers: pd.DataFrame, title: str) -> plt.Figure:
    """Per layer: importance share per head, raw mean |∂L/∂m_h| (log) and relative residual update (log)."""
    columns = ["importance share per head", "raw mean |head-mask gradient|", "relative residual update"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for ax, column in zip(axes, columns):
        for checkpoint, part in layers.groupby("checkpoint", sort=False, observed=True):
            ax.plot(part["layer"], part[column], marker="o", ms=3, label=str(checkpoint))
        ax.set_xlabel("layer")
        ax.set_title(column)
        if column != columns[0]:
            ax.set_yscale("log")
    if layers["checkpoint"].nunique() > 1:
        axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def every_figure(tables) -> dict:
    """Notebook 08's head figures of ``tables`` (``RealModelTables``): table key -> (figure, the numbers it plots)."""
    from .settings import MASK, PROBE, SHUFFLED

    model = tables.info["model"]
    figures = {"accuracy": (accuracy_bars(tables.accuracy, f"{model}: accuracy per family"), tables.accuracy)}
    for method, key in ((MASK, "mask_importance"), (PROBE, "probe_importance"), (SHUFFLED, "control_importance")):
        part = tables.importance[tables.importance["method"] == method]
        figures[key] = (importance_grid(tables.importance, method, f"{model}: {method}"), part)
    title = f"{model}: top heads vs layer-matched random heads"
    figures["ablation"] = (ablation_bars(tables.ablation, title), tables.ablation)
    title = f"{model}: accuracy drop when a family's top heads are masked"
    figures["cross"] = (cross_matrices(tables.cross, title), tables.cross)
    figures["layers"] = (layer_profile_plot(tables.layers, f"{model}: per-layer profile"), tables.layers)
    return figures
