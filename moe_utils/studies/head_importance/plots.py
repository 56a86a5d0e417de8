"""Plots for notebook 06: layer × head importance grids, task-similarity heatmaps, ablation bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ...datasets.cognitive_tasks import TASKS
from ...io.figures import slant_labels


def importance_grid(shares: torch.Tensor, title: str, vmax: float | None = None):
    """The 2 × 4 grid of layer × head heatmaps (one per task) on one shared colour scale."""
    vmax = float(shares.max()) if vmax is None else vmax
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        layers, heads = shares[c].shape
        extent = (0.5, heads + 0.5, 0.5, layers + 0.5)  # layers and heads numbered from 1, as in the tables
        image = ax.imshow(
            shares[c].numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=vmax, extent=extent
        )
        ax.set(xticks=range(1, heads + 1), yticks=range(1, layers + 1))
        ax.set_title(TASKS[c], fontsize=10)
        if c % 4 == 0:
            ax.set_ylabel("Layer")
        if c >= 4:
            ax.set_xlabel("Head")
    fig.colorbar(image, ax=axes, shrink=0.85, label="Heads Importance (share of all heads)")
    fig.suptitle(title, fontsize=11)
    return fig


def similarity_heatmaps(similarities: dict[str, torch.Tensor]):
    """Task × task cosine-similarity heatmaps, one panel per importance method, values written in (seaborn)."""
    import seaborn as sns

    fig, axes = plt.subplots(1, len(similarities), figsize=(6.5 * len(similarities), 5.6), constrained_layout=True)
    axes = np.atleast_1d(axes)
    for i, (ax, (method, sim)) in enumerate(zip(axes, similarities.items())):
        frame = pd.DataFrame(sim.numpy(), index=list(TASKS), columns=list(TASKS))
        sns.heatmap(
            frame,
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="magma",
            annot=True,
            fmt=".2f",
            annot_kws={"fontsize": 7},
            square=True,
            cbar=i == len(similarities) - 1,
            yticklabels=i == 0,
            cbar_kws={"label": "cosine similarity of importance maps", "shrink": 0.8},
        )
        ax.tick_params(axis="x", labelsize=8)
        slant_labels(ax, 45)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(method, fontsize=10)
    return fig


def ablation_bars(table: pd.DataFrame):
    """Grouped bars: held-out accuracy drop per task for each ablation condition."""
    pivot = table.pivot(index="task", columns="condition", values="drop").loc[list(TASKS)]
    fig, ax = plt.subplots(figsize=(11, 4))
    pivot.plot.bar(ax=ax, width=0.8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("accuracy drop (baseline − ablated)")
    ax.set_xlabel("")
    slant_labels(ax)
    ax.legend(fontsize=8)
    return fig


def ablation_seeds(per_seed: pd.DataFrame, title: str):
    """Accuracy drop (mean of the tasks) per ablation condition: one dot per seed, mean ± std bars."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    conditions = list(dict.fromkeys(per_seed.condition))
    for i, c in enumerate(conditions):
        g = per_seed[per_seed.condition == c]["drop"]
        ax.scatter([i] * len(g), g, alpha=0.5, s=16, color=f"C{i}")
        ax.errorbar(i, g.mean(), yerr=g.std(ddof=1) if len(g) > 1 else 0, fmt="o", color=f"C{i}", capsize=4)
    ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
    slant_labels(ax, 25)
    ax.set_ylabel("accuracy drop (mean of the tasks)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def accuracy_bars(accuracy: pd.DataFrame):
    """Held-out accuracy per family beside chance and the majority answer's share."""
    ax = accuracy[["held-out accuracy", "chance", "majority"]].plot.bar(
        figsize=(10, 3.5), color=["tab:blue", "0.6", "0.8"]
    )
    slant_labels(ax)
    return ax.figure
