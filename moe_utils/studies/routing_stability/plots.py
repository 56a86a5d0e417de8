"""Plots for notebook 04: Jaccard vs σ, selection grids (the source's picture), routing fluctuation, stability trade-off."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

DATASET_STYLES = ("-", "--")  # first, second dataset
GRID_PANELS = (
    ("E_orig", "$E_{orig}$"),
    ("E_pert", "$E_{pert}$"),
    ("intersection", r"$E_{orig} \cap E_{pert}$"),
    ("union", r"$E_{orig} \cup E_{pert}$"),
)


def jaccard_vs_sigma(curves: pd.DataFrame, runs: list[str], eval_sigma: float):
    """Mean Jaccard (left) and share of tokens whose set changed (right) vs σ; colour = run, line = dataset, panel row = layer."""
    layers = sorted(curves.layer.unique())
    fig, axes = plt.subplots(len(layers), 2, figsize=(11, 3.6 * len(layers)), squeeze=False)
    colors = dict(zip(runs, plt.cm.viridis(np.linspace(0, 0.9, len(runs)))))
    datasets = list(dict.fromkeys(curves.dataset))  # the first dataset first (solid), the second dashed
    for row, layer in enumerate(layers):
        for col, metric in enumerate(("jaccard", "changed")):
            ax = axes[row, col]
            for run in runs:
                for dataset in datasets:
                    style = DATASET_STYLES[min(datasets.index(dataset), 1)]
                    f = curves[(curves.run == run) & (curves.layer == layer) & (curves.dataset == dataset)]
                    ax.plot(f.sigma, f[metric], style, marker=".", color=colors[run], label=f"{run} · {dataset}")
            ax.axvline(eval_sigma, color="grey", lw=0.8, ls=":")
            ax.set_xlabel("σ (relative to the token's router-input RMS)")
            ax.set_ylabel(
                "mean Jaccard J(E_orig, E_pert)" if metric == "jaccard" else "share of tokens with a changed set"
            )
            ax.set_title(f"MoE layer {layer}")
            ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(0.8, 0.5), frameon=False)
    return fig


def selection_grids(grid: pd.DataFrame, title: str):
    """The source's picture: E_orig, E_pert, intersection and union as black/white token × expert grids."""
    n_tokens, n_experts = grid.token.nunique(), grid.expert.nunique()
    fig, axes = plt.subplots(1, 4, figsize=(12, 1.6 + 0.26 * n_tokens), layout="constrained")  # a row per token
    extent = (0.5, n_experts + 0.5, n_tokens + 0.5, 0.5)  # tokens and experts numbered from 1, as in the table
    for ax, (column, label) in zip(axes, GRID_PANELS):
        cells = grid.pivot(index="token", columns="expert", values=column).to_numpy()  # [tokens, experts]
        ax.imshow(cells, cmap="Greys", vmin=0, vmax=1, aspect="equal", extent=extent)
        ax.set_xticks(range(1, n_experts + 1)), ax.set_yticks(range(1, n_tokens + 1))
        ax.tick_params(labelsize=8)
        ax.set_xticks(np.arange(0.5, n_experts + 1), minor=True)  # cell borders
        ax.set_yticks(np.arange(0.5, n_tokens + 1), minor=True)
        ax.grid(which="minor", color="grey", lw=0.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("expert"), ax.set_title(label)
    axes[0].set_ylabel("token")
    fig.suptitle(title, fontsize=10)
    return fig


def fluctuation(fluct: pd.DataFrame, runs: list[str]):
    """Share of probe tokens whose top-k set changed since the previous checkpoint, per layer, vs training step."""
    layers = sorted(fluct.layer.unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(5.5 * len(layers), 3.6), squeeze=False)
    colors = dict(zip(runs, plt.cm.viridis(np.linspace(0, 0.9, len(runs)))))
    for ax, layer in zip(axes[0], layers):
        for run in runs:
            f = fluct[(fluct.run == run) & (fluct.layer == layer)]
            ax.plot(f.step, f.changed, color=colors[run], label=run, lw=1)
        ax.set_xlabel("training step"), ax.set_ylabel("share of probe tokens whose set changed")
        ax.set_title(f"MoE layer {layer}: routing fluctuation"), ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def tradeoff(table: pd.DataFrame, eval_sigma: float, top_k: int | None = None):
    """Test accuracy vs mean hard Jaccard at the evaluation σ, one labelled point per run; with ``top_k``, runs whose
    first layer (layer 1) collapsed onto top_k experts are ringed in red (their stability is that of a constant router)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = {
        "consistency": "o",
        "noisy_topk": "s",
        "baseline": "*",
        "consistency + balance": "P",
        "baseline + balance": "X",
    }
    names = {"noisy_topk": "noisy top-k gating", "consistency": "consistency regulariser"}
    used = table.get("experts_used_layer1")
    for kind in sorted(table.kind.unique(), key=lambda k: k == "baseline"):  # the baseline last, on top
        f, marker = table[table.kind == kind], markers.get(kind, "o")
        hollow = (used is not None and top_k is not None) and (f.experts_used_layer1 <= top_k + 0.05)
        ax.scatter(f.jaccard, f.acc, marker=marker, s=110 if kind == "baseline" else 60, label=names.get(kind, kind),
                   zorder=3 if kind == "baseline" else 2, edgecolors="k" if kind == "baseline" else "face")  # fmt: skip
        if hollow is not False and hollow.any():
            ax.scatter(f.jaccard[hollow], f.acc[hollow], marker="o", s=160, facecolors="none", edgecolors="red",
                       label="layer 1 collapsed onto top-k experts" if kind == "consistency" else None)  # fmt: skip
        for _, r in f.iterrows():
            ax.annotate(r.run, (r.jaccard, r.acc), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel(f"mean Jaccard at σ = {eval_sigma} (both layers, all probe tokens)")
    ax.set_ylabel("test accuracy (20 classes)")
    ax.set_title("Routing stability vs accuracy")
    ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def seed_bands(summary: pd.DataFrame, eval_sigma: float):
    """Jaccard (left) and changed share (right) vs σ over seeds: mean line, ±1 std band; runs by colour, noise
    placements by line style, in two legends."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    lines = list(dict.fromkeys(zip(summary.run, summary.noise_at)))
    runs = list(dict.fromkeys(r for r, _ in lines))
    colors = dict(zip(runs, plt.cm.tab10(np.arange(len(runs)))))
    styles = {"router input": "-", "block input": "--", "model input": ":"}
    for ax, metric, label in zip(
        axes, ("jaccard", "changed"), ("mean Jaccard J(E_orig, E_pert)", "tokens with a changed set")
    ):
        for run, noise_at in lines:
            f = summary[(summary.run == run) & (summary.noise_at == noise_at)].sort_values("sigma")
            mean, std = f[f"{metric}_mean"], f[f"{metric}_std"].fillna(0)
            ax.plot(f.sigma, mean, styles.get(noise_at, "-."), marker=".", color=colors[run])
            ax.fill_between(f.sigma, mean - std, mean + std, color=colors[run], alpha=0.15, lw=0)
        ax.axvline(eval_sigma, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="σ (relative to the RMS of what is perturbed)", ylabel=label)
        ax.set_title(label.split(" J(")[0], fontsize=10)
        ax.grid(alpha=0.3)
    n = int(summary.n_seeds.min())
    fig.suptitle(f"Mean ± 1 std over {n} seeds, layers and datasets pooled", fontsize=10)
    run_handles = [Line2D([], [], color=colors[r], marker=".", label=r) for r in runs]
    placements = [p for p in styles if p in set(summary.noise_at)]
    style_handles = [Line2D([], [], color="k", ls=styles[p], label=f"noise at {p}") for p in placements]
    first = fig.legend(handles=run_handles, title="run", fontsize=8, title_fontsize=8, loc="outside right upper")
    fig.legend(handles=style_handles, title="placement", fontsize=8, title_fontsize=8, loc="outside right lower")
    fig.add_artist(first)
    return fig


def tradeoff_seeds(per_seed: pd.DataFrame, eval_sigma: float):
    """Test accuracy vs mean Jaccard at the evaluation σ over seeds: one faint point per seed, mean ± std error bars per run."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    runs = list(dict.fromkeys(per_seed.run))
    colors = dict(zip(runs, plt.cm.viridis(np.linspace(0, 0.9, len(runs)))))
    for run in runs:
        f = per_seed[per_seed.run == run]
        ax.scatter(f.jaccard, f.acc, color=colors[run], alpha=0.35, s=18)
        ax.errorbar(
            f.jaccard.mean(),
            f.acc.mean(),
            xerr=f.jaccard.std(ddof=1),
            yerr=f.acc.std(ddof=1),
            fmt="o",
            color=colors[run],
            capsize=3,
            label=f"{run} (n = {f.seed.nunique()})",
        )
    ax.set_xlabel(f"mean Jaccard at σ = {eval_sigma} (router input, both layers, all probe tokens)")
    ax.set_ylabel("test accuracy (20 classes)")
    ax.set_title("Routing stability vs accuracy over seeds (mean ± 1 std; faint: each seed)", fontsize=9)
    ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def prediction_flips(flips: pd.DataFrame, runs: list[str], eval_sigma: float):
    """What routing noise costs: the share of test predictions that flip (left) and the accuracy change (right) vs σ
    when every router decides on noisy input; mean over seeds per run, one faint line per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    colors = dict(zip(runs, plt.cm.tab10(np.arange(len(runs)))))
    for ax, metric, label in zip(
        axes, ("flipped", "acc_change"), ("test predictions that flip", "accuracy change (noisy − clean)")
    ):
        for run in runs:
            f = flips[flips.run == run]
            for _, one in f.groupby("seed"):
                ax.plot(one.sigma, one[metric], color=colors[run], alpha=0.2, lw=0.8)
            mean = f.groupby("sigma")[metric].mean()
            ax.plot(mean.index, mean.values, marker=".", color=colors[run], label=run)
        ax.axvline(eval_sigma, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="σ at every router's input (relative to its RMS; experts see the clean input)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="run", title_fontsize=8)
    n = int(flips.groupby("run").seed.nunique().min())
    fig.suptitle(f"What routing noise costs the predictions ({n} seeds per run)", fontsize=10)
    return fig
