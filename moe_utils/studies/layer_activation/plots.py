"""Plots for notebook 07: layer × training-step heatmaps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def rank_trend_plot(summary: pd.DataFrame, titles: dict):
    """Spearman ρ of each quantity with the training step, per layer: mean over seeds ± std; ±0.5 dotted."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for i, (quantity, part) in enumerate(summary.groupby("quantity", sort=False)):
        x = part["layer"].to_numpy() + (i - 2) * 0.08
        ax.errorbar(x, part["rho mean"], yerr=part["rho std"], marker="o", ms=3, capsize=2, label=titles[quantity])
    for level in (0.5, -0.5):
        ax.axhline(level, color="k", ls=":", lw=0.8)
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel="Layer", ylabel="Spearman ρ with the step", ylim=(-1.05, 1.05))
    ax.set_xticks(sorted(summary["layer"].unique()))
    ax.set_title("Trend through training over every checkpoint: mean over seeds ± std", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def quantity_panels(per_layer: pd.DataFrame, quantities: dict, titles: dict, clip: float, suffix: str = "") -> dict:
    """Layer × step panels of ``per_layer``, one per quantity (-> colour scale): the linear one clipped at ``clip``."""
    return {
        titles[q] + suffix: (
            per_layer.pivot(index="step", columns="layer", values=q),
            scale,
            clip if scale == "linear" else None,
        )
        for q, scale in quantities.items()
    }


def readable_heatmaps(panels: dict[str, tuple[pd.DataFrame, str, float | None]], per_row: int = 3):
    """Layer × step heatmaps, ``per_row`` to a row, each with its own colour scale: ``(frame, "log" | "linear", clip)``
    per panel title.

    A linear panel with ``clip`` saturates at that value and marks every clipped cell with a dot (the legend sits under
    the panel, off the cells); a log panel spans its own positive range.
    """
    from matplotlib.colors import LogNorm, Normalize

    rows = -(-len(panels) // per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(5.6 * per_row, 5.0 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, (frame, scale, clip)) in zip(axes.flat, panels.items()):
        values = frame.values
        if scale == "log":
            positive = values[values > 0]
            norm = LogNorm(vmin=float(positive.min()), vmax=float(positive.max()))
        else:
            norm = Normalize(vmin=0, vmax=clip if clip is not None else float(values.max()))
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="magma", norm=norm)
        if clip is not None:
            marked, cols = np.nonzero(values > clip)
            ax.scatter(cols, marked, s=10, color="tab:cyan", marker="o", label=f"> {clip:g} (clipped)")
            if len(marked):
                ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        ax.set_xticks(range(frame.shape[1]), frame.columns)
        ax.set_yticks(
            range(frame.shape[0]), [f"{s:,}" if isinstance(s, (int, np.integer)) else str(s) for s in frame.index]
        )
        ax.set_xlabel("Layer")
        ax.set_ylabel("Steps")
        ax.set_title(title, fontsize=9)
        fig.colorbar(
            image, ax=ax, shrink=0.85, label=f"{scale} scale" + (f", clipped at {clip:g}" if clip is not None else "")
        )
    fig.tight_layout()
    return fig
