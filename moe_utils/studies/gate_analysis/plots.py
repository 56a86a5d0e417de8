"""Notebook 03's figures: gate weights, class routing, expert sweep, gate strategies, seed bands, hard split."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...datasets.mnist_cifar import slug
from ...exp1.figure_style import DATASET_COLORS, MODEL_COLORS, SPLIT_STYLES, datasets_in, style_accuracy_axes


def gate_weight_histograms(hist: pd.DataFrame):
    """One panel per (learned gate, dataset): the share of inputs per bin of G(X)_1, train solid and test dashed."""
    models, datasets = hist["model"].unique(), datasets_in(hist)
    fig, axes = plt.subplots(len(models), 2, figsize=(9, 2.4 * len(models)), squeeze=False, sharex=True)
    for r, model in enumerate(models):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            for split, frame in hist[(hist["model"] == model) & (hist["dataset"] == dataset)].groupby(
                "split", sort=False
            ):
                edges = np.append(frame["bin_left"].to_numpy(), frame["bin_right"].iloc[-1])
                ax.stairs(
                    frame["share"].to_numpy(),
                    edges,
                    linestyle=SPLIT_STYLES[split],
                    color=DATASET_COLORS[c],
                    label=split,
                )
            ax.set_yscale("log")
            ax.set_ylim(1e-4, 1.5)
            ax.set_title(f"{model} · {dataset}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[r, 0].set_ylabel("share of inputs")
    for ax in axes[-1]:
        ax.set_xlabel(f"G(X)₁ (expert 1 = larger {datasets[0]} share)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def class_routing_heatmap(class_rates: pd.DataFrame):
    """One heatmap per gated model: activation rate of each expert (columns) for each of the 20 classes (rows)."""
    models = class_rates["model"].unique()
    widths = [class_rates.loc[class_rates["model"] == m, "expert"].max() for m in models]
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(1.2 + 0.55 * sum(widths) + 1.3 * len(models), 6.5),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
    )
    for ax, model in zip(axes[0], models):
        table = class_rates[class_rates["model"] == model].pivot_table(
            index=["class", "class_name"], columns="expert", values="rate"
        )
        image = ax.imshow(table.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(
            table.to_numpy() if table.shape[1] <= 4 else np.empty((0, 0))
        ):  # numbers only where they fit
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(table.shape[1]), table.columns)
        ax.set_yticks(range(len(table)), [n for _, n in table.index] if ax is axes[0, 0] else [])
        ax.set_xlabel("expert")
        ax.set_title(model, fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.6, label="ActivationRate(expert | class)")
    return fig


def expert_sweep_plot(final: pd.DataFrame, routing: pd.DataFrame):
    """Left: final accuracy against the number of experts; right: the majority expert's share of each dataset (test)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {
        ("linear", "linear"): ("tab:red", "o"),
        ("linear", "mlp"): ("c", "o"),
        ("mlp", "linear"): ("tab:red", "s"),
        ("mlp", "mlp"): ("c", "s"),
    }
    for (experts, gate), frame in final.groupby(["experts", "gate"], sort=False):
        color, marker = styles.get((experts, gate), ("k", "x"))
        label = f"{experts} experts, {gate} gate"
        for split in ("train", "test"):
            left.plot(
                frame["n_experts"],
                frame[split],
                SPLIT_STYLES[split],
                color=color,
                marker=marker,
                mfc="white" if experts == "mlp" else color,
                label=f"{label} ({split})",
            )
        shares = routing[(routing["experts"] == experts) & (routing["gate"] == gate) & (routing["split"] == "test")]
        for d, (dataset, part) in enumerate(shares.groupby("dataset", sort=False)):
            right.plot(
                part["n_experts"],
                part["majority_share"],
                "-" if d == 0 else ":",
                color=color,
                marker=marker,
                mfc="white" if experts == "mlp" else color,
                label=f"{label}, {dataset}",
            )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(final["n_experts"].unique()), [str(n) for n in sorted(final["n_experts"].unique())])
        ax.set_xlabel("number of experts")
        ax.grid(alpha=0.3)
    left.set_ylabel("accuracy (final epoch)")
    right.set_ylabel("majority expert's share (test)")
    right.set_ylim(0, 1.02)
    left.legend(fontsize=6, ncol=2)
    right.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def strategy_plot(table: pd.DataFrame, reference: float | None = None, names: tuple[str, str] = ("MNIST", "CIFAR")):
    """Left: test accuracy per gate strategy and gate (dotted: ``reference``); right: activation rate of expert 1
    (the heavier on the first dataset) per dataset ``names`` (test)."""
    gates = table["gate"].unique()
    strategies = table["strategy"].unique()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    height = 0.8 / len(gates)
    y = np.arange(len(strategies))
    for g, gate in enumerate(gates):
        part = table[table["gate"] == gate].set_index("strategy").reindex(strategies)
        color = MODEL_COLORS.get(gate, "k")
        left.barh(y + g * height, part["test"], height, color=color, label=gate)
        for d, dataset in enumerate(names):
            col = f"{slug(dataset)}_e1_test"
            right.barh(
                y + g * height + (d - 0.5) * height / 2,
                part[col],
                height / 2,
                color=color,
                alpha=1.0 if d == 0 else 0.45,
                label=f"{gate}, {dataset}",
            )
    left.set_yticks(y + height * (len(gates) - 1) / 2, strategies)
    left.invert_yaxis()
    if reference is not None:
        left.axvline(reference, color=MODEL_COLORS["pre-designed gate"], linestyle=":", label="pre-designed gate")
    values = table["test"].tolist() + ([reference] if reference is not None else [])
    left.set_xlim(max(0, min(values) - 0.03), max(values) + 0.01)
    left.set_xlabel("test accuracy (final epoch)")
    right.set_xlabel("ActivationRate(expert 1 | dataset), test")
    right.set_xlim(0, 1)
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def accuracy_bands(summary: pd.DataFrame, title: str = "Accuracy per epoch, mean ± std over seeds"):
    """The source's Figure 1 over seeds: mean line and a ±1 std band per model and split."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (model, split), frame in summary.groupby(["model", "split"], sort=False):
        color = MODEL_COLORS.get(model)
        ax.plot(frame["epoch"], frame["mean"], SPLIT_STYLES[split], color=color, label=f"{model} ({split})")
        ax.fill_between(
            frame["epoch"],
            frame["mean"] - frame["std"],
            frame["mean"] + frame["std"],
            color=color,
            alpha=0.2,
            linewidth=0,
        )
    style_accuracy_axes(ax, title)
    return fig


def sweep_lines(final: pd.DataFrame, routing: pd.DataFrame, has_single: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The expert sweep's (final, routing) tables to draw: with a single-expert run, every line starts from it."""
    if not has_single:
        return final, routing

    def from_single(table):
        base = table[table["gate"] == "none"]
        lines = [table[table["gate"] != "none"]] + [base.assign(gate=g) for g in ("linear", "mlp")]
        return pd.concat(lines, ignore_index=True).sort_values(["experts", "gate", "n_experts"])

    return from_single(final), from_single(routing)


def hard_split_plot(
    majority: pd.DataFrame,
    by_epoch: pd.DataFrame,
    source_shares: dict[str, float] | None,
    names: tuple[str, str] = ("MNIST", "CIFAR"),
):
    """Left: each dataset's majority share (test) per variant, one dot per seed (dotted: source 004's CIFAR share, when
    given); right: the second dataset's (CIFAR's) majority share per epoch (mean over seeds)."""
    source_shares = source_shares or {}
    first, second = names
    variants = majority["variant"].unique()
    gates = majority["model"].unique()
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 0.9 + 0.45 * len(variants) * len(gates) / 2 + 2), gridspec_kw={"width_ratios": [1.2, 1]}
    )
    y = np.arange(len(variants))
    offsets = np.linspace(-0.2, 0.2, len(gates))
    test = majority[majority["split"] == "test"]
    for gate, off in zip(gates, offsets):
        color = MODEL_COLORS.get(gate, "k")
        for dataset, marker in ((second, "o"), (first, "x")):
            part = test[(test["model"] == gate) & (test["dataset"] == dataset)]
            rows = part["variant"].map({v: i for i, v in enumerate(variants)})
            left.scatter(
                part["majority_share"],
                rows + off,
                color=color,
                marker=marker,
                s=22,
                alpha=0.8,
                label=f"{gate}, {dataset}",
            )
        if gate in source_shares:
            left.axvline(source_shares[gate], color=color, linestyle=":", linewidth=1)
    left.set_yticks(y, variants)
    left.invert_yaxis()
    left.set_xlim(0.45, 1.02)
    dotted = f"; dotted: source 004's {second} share" if source_shares else ""
    left.set_xlabel(f"majority expert's share of the dataset (test{dotted})")
    left.grid(alpha=0.3)
    left.legend(fontsize=7, loc="lower left")
    cifar = (
        by_epoch[by_epoch["dataset"] == second]
        .groupby(["variant", "model", "epoch"], sort=False)["majority_share"]
        .mean()
        .reset_index()
    )
    cmap = plt.get_cmap("tab10")
    for i, variant in enumerate(variants):
        for gate, style in zip(gates, ("-", "--")):
            part = cifar[(cifar["variant"] == variant) & (cifar["model"] == gate)]
            right.plot(
                part["epoch"],
                part["majority_share"],
                style,
                color=cmap(i % 10),
                label=f"{variant} ({gate})" if gate == gates[0] else None,
            )
    right.set_xlabel("epoch (solid: linear gate, dashed: 1-hidden-layer gate)")
    right.set_ylabel(f"{second} majority share, training batches")
    right.set_ylim(0.45, 1.02)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    right.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
