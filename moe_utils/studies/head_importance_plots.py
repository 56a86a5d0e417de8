"""Plots for notebook 06: layer × head importance grids, task-similarity heatmaps, ablation bars."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..datasets.cognitive_tasks import TASKS


def importance_grid(shares: torch.Tensor, title: str, vmax: float | None = None):
    """The 2 × 4 grid of layer × head heatmaps (one per task) on one shared colour scale."""
    vmax = float(shares.max()) if vmax is None else vmax
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        image = ax.imshow(shares[c].numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(TASKS[c], fontsize=10)
        if c % 4 == 0:
            ax.set_ylabel("Layer")
        if c >= 4:
            ax.set_xlabel("Head")
    fig.colorbar(image, ax=axes, shrink=0.85, label="Heads Importance (share of all heads)")
    fig.suptitle(title, fontsize=11)
    return fig


def similarity_heatmaps(similarities: dict[str, torch.Tensor]):
    """Task × task cosine-similarity heatmaps, one panel per importance method, with values written in."""
    fig, axes = plt.subplots(1, len(similarities), figsize=(6.5 * len(similarities), 5.6))
    axes = np.atleast_1d(axes)
    for ax, (method, sim) in zip(axes, similarities.items()):
        image = ax.imshow(sim.numpy(), vmin=0, vmax=1, cmap="magma")
        for i in range(sim.shape[0]):
            for j in range(sim.shape[1]):
                ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if sim[i, j] < 0.6 else "k")
        ax.set_xticks(range(len(TASKS)), TASKS, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(TASKS)), TASKS if ax is axes[0] else [], fontsize=8)
        ax.set_title(method, fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine similarity of importance maps")
    return fig


def ablation_bars(table: pd.DataFrame):
    """Grouped bars: held-out accuracy drop per task for each ablation condition."""
    pivot = table.pivot(index="task", columns="condition", values="drop").loc[list(TASKS)]
    fig, ax = plt.subplots(figsize=(11, 4))
    pivot.plot.bar(ax=ax, width=0.8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("accuracy drop (baseline − ablated)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=20)
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
    ax.set_xticks(range(len(conditions)), [c.replace(" (", "\n(") for c in conditions], fontsize=8)
    ax.set_ylabel("accuracy drop (mean of the tasks)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
