"""Plots for notebook 09: load heatmaps in DeepSeek-V3's layout, specialisation per seed, routing and prediction
change under noise, the layer profile through training and the training curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...datasets.corpora.domains import DOMAINS
from .settings import METHOD_LABELS

DOMAIN_LABELS = {"wikipedia": "Wikipedia (en)", "github": "GitHub", "dm_mathematics": "DM Mathematics"}
COLOURS = {"aux_loss": "C0", "aux_free": "C1", "dense": "0.4"}


def load_heatmaps(load: pd.DataFrame, seed: int, stage: str = "trained") -> plt.Figure:
    """The source's layout: a row of panels per layer, a column per method; domains as rows, experts as columns."""
    part = load[(load.seed == seed) & (load.stage == stage)]
    methods, layers = list(dict.fromkeys(part.method)), sorted(part.layer.unique())
    vmax = float(part.relative_load.max())
    fig, axes = plt.subplots(
        len(layers),
        len(methods),
        figsize=(4.4 * len(methods), 1.3 * len(layers) + 0.8),
        squeeze=False,
        constrained_layout=True,
    )
    image = None
    for r, layer in enumerate(layers):
        for c, method in enumerate(methods):
            cell = part[(part.method == method) & (part.layer == layer)]
            grid = cell.pivot(index="domain", columns="expert", values="relative_load").loc[
                list(DOMAINS)
            ]  # [domains, E]
            ax = axes[r, c]
            image = ax.imshow(grid.to_numpy(), cmap="YlOrRd", vmin=0.0, vmax=vmax, aspect="auto")
            ax.set_title(f"{METHOD_LABELS[method]} Layer {layer}", fontsize=9)
            ax.set_yticks(range(len(DOMAINS)), [DOMAIN_LABELS[d] for d in DOMAINS], fontsize=8)
            ax.set_xticks(range(grid.shape[1]), [str(e) for e in grid.columns], fontsize=7)
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    ax.text(j, i, f"{grid.iat[i, j]:.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=axes, label="Relative Expert Load", shrink=0.6)
    fig.suptitle(f"upcycled SmolLM2, seed {seed}, {stage}: relative expert load per domain", fontsize=10)
    return fig


def specialisation_seeds(per_seed: pd.DataFrame) -> plt.Figure:
    """Specialisation and held-out MaxVio per seed, before and after training, one line per seed and method."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, value, label in zip(
        axes, ("specialisation", "heldout_maxvio"), ("domain specialisation", "held-out MaxVio")
    ):
        for method, part in per_seed.groupby("method", sort=False):
            for seed, rows in part.groupby("seed"):
                rows = rows.set_index("stage").loc[["init", "trained"]]
                ax.plot([0, 1], rows[value], "o-", color=COLOURS[method], alpha=0.8,
                        label=METHOD_LABELS[method] if seed == part.seed.min() else None)  # fmt: skip
        ax.set_xticks([0, 1], ["upcycled (before training)", "trained"])
        ax.set(ylabel=label, title=f"{label}, one line per seed")
        ax.legend(fontsize=8)
    return fig


def noise_figure(summary: pd.DataFrame) -> plt.Figure:
    """Per MoE layer after training: Jaccard of the top-k sets against σ, and the next-token KL under the same
    noise with the routing free, pinned to the clean choice, and in the dense model trained the same way."""
    trained = summary[summary.stage == "trained"]
    layers = sorted(trained.layer.unique())
    fig, axes = plt.subplots(2, len(layers), figsize=(3.2 * len(layers), 6), squeeze=False, constrained_layout=True)
    for c, layer in enumerate(layers):
        part = trained[trained.layer == layer]
        for method, rows in part.groupby("method", sort=False):
            if "jaccard" in rows and rows["jaccard"].notna().any():
                axes[0, c].errorbar(rows.sigma, rows.jaccard, rows["jaccard std"], marker="o", color=COLOURS[method],
                                    label=METHOD_LABELS[method], capsize=2)  # fmt: skip
            axes[1, c].plot(rows.sigma, rows.kl, "o-", color=COLOURS[method], label=f"{METHOD_LABELS[method]}")
            if rows["kl (routing pinned)"].notna().any():
                axes[1, c].plot(rows.sigma, rows["kl (routing pinned)"], "s--", color=COLOURS[method],
                                label=f"{METHOD_LABELS[method]}, routing pinned")  # fmt: skip
        axes[0, c].set(xscale="log", ylim=(0, 1.02), title=f"layer {layer}", xlabel="σ (relative to the token's RMS)")
        axes[1, c].set(xscale="log", yscale="log", xlabel="σ", title=f"next-token KL, noise at layer {layer}")
    axes[0, 0].set_ylabel("Jaccard of top-k sets")
    axes[1, 0].set_ylabel("KL(clean ‖ noisy)")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    return fig


def profile_figure(profile: pd.DataFrame, quantity: str = "relative residual update") -> plt.Figure:
    """The layer profile (source 002) at each checkpoint: one panel per method, one line per layer (seed mean)."""
    methods = list(dict.fromkeys(profile.method))
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3.4), squeeze=False, constrained_layout=True)
    for ax, method in zip(axes[0], methods):
        part = profile[profile.method == method].groupby(["step", "layer"])[quantity].mean().unstack()
        for layer in part.columns:
            ax.plot(part.index, part[layer], marker=".", label=f"layer {layer}")
        ax.set(title=METHOD_LABELS[method], xlabel="training step", ylabel=quantity)
        ax.legend(fontsize=7)
    return fig


def training_figure(history: pd.DataFrame, window: int = 10) -> plt.Figure:
    """Training loss and per-batch MaxVio (layer mean), rolling means, per method (seed mean)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    maxvio = [c for c in history.columns if c.startswith("maxvio_")]
    for method, part in history.groupby("method", sort=False):
        steps = part.groupby("step")
        left.plot(
            steps["loss"].mean().rolling(window, min_periods=1).mean(),
            color=COLOURS[method],
            label=METHOD_LABELS[method],
        )
        if method != "dense":
            mv = part[maxvio].mean(axis=1).groupby(part.step).mean()
            right.plot(mv.rolling(window, min_periods=1).mean(), color=COLOURS[method], label=METHOD_LABELS[method])
    left.set(xlabel="step", ylabel=f"training loss (rolling {window})")
    right.set(xlabel="step", ylabel=f"MaxVio_batch, layer mean (rolling {window})")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    return fig


def loss_bars(losses: pd.DataFrame) -> plt.Figure:
    """Held-out loss per domain: the dense model, the upcycled model before training, and each trained model."""
    init_dense = losses[(losses.method == "dense") & (losses.stage == "init")].assign(label="dense (pretrained)")
    init_moe = losses[(losses.method != "dense") & (losses.stage == "init")].assign(label="upcycled, before training")
    trained = losses[losses.stage == "trained"].assign(label=lambda f: f.method.map(METHOD_LABELS) + ", trained")
    table = pd.concat([init_dense, init_moe, trained]).groupby(["label", "domain"], sort=False)["held-out loss"]
    mean, std = table.mean().unstack(), table.std(ddof=1).unstack()
    fig, ax = plt.subplots(figsize=(9, 3.4), constrained_layout=True)
    width = 0.8 / len(mean)
    for i, label in enumerate(mean.index):
        x = np.arange(len(DOMAINS)) + (i - (len(mean) - 1) / 2) * width
        ax.bar(
            x,
            mean.loc[label, list(DOMAINS)],
            width,
            yerr=std.loc[label, list(DOMAINS)].fillna(0),
            label=label,
            capsize=2,
        )
    ax.set_xticks(range(len(DOMAINS)), [DOMAIN_LABELS[d] for d in DOMAINS])
    ax.set(ylabel="held-out loss (nats / token)")
    ax.legend(fontsize=7, ncol=2)
    return fig
