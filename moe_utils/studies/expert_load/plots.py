"""Plots for notebook 05: relative-load heatmaps in the paper's layout and MaxVio during training / on held-out text."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .method import DOMAIN_LABELS, METHOD_LABELS


def load_heatmaps(load: pd.DataFrame, vmax: float | None = None) -> plt.Figure:
    """Paper layout: one row of panels per layer, one column per method; rows = domains, columns = experts; shared scale."""
    methods = list(dict.fromkeys(load["method"]))
    layers = sorted(load["layer"].unique())
    domains = list(dict.fromkeys(load["domain"]))
    vmax = vmax if vmax is not None else float(load["relative_load"].max())
    n_experts = load["expert"].nunique()
    annotate = n_experts <= 16  # numbers in the cells only while they fit; the csv holds them all
    tick_every = 1 if n_experts <= 16 else 4
    fig, axes = plt.subplots(
        len(layers),
        len(methods),
        figsize=(4.2 * len(methods) * max(1.0, n_experts / 16), 1.25 * len(layers) + 0.8),
        squeeze=False,
        constrained_layout=True,
    )
    image = None
    for r, layer in enumerate(layers):
        for c, method in enumerate(methods):
            part = load[(load["method"] == method) & (load["layer"] == layer)]
            grid = part.pivot(index="domain", columns="expert", values="relative_load").loc[
                domains
            ]  # [domains, experts]
            ax = axes[r, c]
            image = ax.imshow(grid.to_numpy(), cmap="YlOrRd", vmin=0.0, vmax=vmax, aspect="auto")
            ax.set_title(f"{METHOD_LABELS.get(method, method)} Layer {layer}", fontsize=9)
            ax.set_yticks(range(len(domains)), [DOMAIN_LABELS.get(d, d) for d in domains], fontsize=8)
            ticks = range(0, grid.shape[1], tick_every)
            ax.set_xticks(ticks, [str(grid.columns[j]) for j in ticks], fontsize=7)  # experts numbered from 1
            for i in range(grid.shape[0] if annotate else 0):
                for j in range(grid.shape[1]):
                    ax.text(j, i, f"{grid.iat[i, j]:.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=axes, label="Relative Expert Load", shrink=0.6)
    return fig


def maxvio_figure(train_mv: pd.DataFrame, held_mv: pd.DataFrame, window: int = 25) -> plt.Figure:
    """Left: per-batch MaxVio during training (mean over layers, rolling mean); right: held-out global MaxVio per layer."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    methods = list(dict.fromkeys(train_mv["method"]))
    for method in methods:
        per_step = train_mv[train_mv["method"] == method].groupby("step")["maxvio"].mean()
        left.plot(
            per_step.index, per_step.rolling(window, min_periods=1).mean(), label=METHOD_LABELS.get(method, method)
        )
    left.set(xlabel="training step", ylabel=f"MaxVio_batch (layer mean, rolling {window})", yscale="log")
    left.legend()
    layers = sorted(held_mv["layer"].unique())
    width = 0.8 / len(methods)
    for m, method in enumerate(methods):
        values = held_mv[held_mv["method"] == method].set_index("layer").loc[layers, "maxvio"]
        right.bar(np.arange(len(layers)) + m * width, values, width, label=METHOD_LABELS.get(method, method))
    right.set_xticks(np.arange(len(layers)) + width * (len(methods) - 1) / 2, [f"layer {l}" for l in layers])
    right.set(ylabel="MaxVio_global on held-out text")
    right.legend()
    return fig


def seed_comparison(per_seed: pd.DataFrame, boot: pd.DataFrame):
    """Specialisation (left) and held-out MaxVio (right) per config and method: each seed (dots), the seed mean with its
    95 % interval over held-out documents (bars)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    configs = list(dict.fromkeys(per_seed.config))
    for ax, stat, label in zip(
        axes,
        ("specialisation", "heldout_maxvio"),
        ("domain specialisation", "held-out MaxVio (domains pooled, layer mean)"),
    ):
        for c, config in enumerate(configs):
            for m, method in enumerate(METHOD_LABELS):
                x = c + (m - 0.5) * 0.3
                f = per_seed[(per_seed.config == config) & (per_seed.method == method)][stat]
                ax.scatter(np.full(len(f), x), f, s=14, alpha=0.45, color=f"C{m}")
                b = boot[(boot.config == config) & (boot.statistic == stat) & (boot.method == method)].iloc[0]
                ax.errorbar(
                    x,
                    b.estimate,
                    yerr=[[b.estimate - b.ci_low], [b.ci_high - b.estimate]],
                    fmt="o",
                    color=f"C{m}",
                    capsize=4,
                    label=f"{METHOD_LABELS[method]}" if c == 0 else None,
                )
        ax.set_xticks(range(len(configs)), configs)
        ax.set_ylabel(label), ax.grid(alpha=0.3)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("dots: one seed each; bars: seed mean with its 95 % interval over held-out documents", fontsize=9)
    fig.tight_layout()
    return fig
