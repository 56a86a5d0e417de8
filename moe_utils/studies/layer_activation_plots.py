"""Plots for notebook 07: layer × training-step heatmaps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def layer_step_heatmaps(panels: dict[str, pd.DataFrame], vmax: float | None = None):
    """Layer (x, 1-based) × training step (y) heatmaps of per-head-normalised values, one panel each, shared scale."""
    vmax = max(float(p.values.max()) for p in panels.values()) if vmax is None else vmax
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (title, frame) in zip(axes, panels.items()):  # frame: index steps, columns layers 1..L
        image = ax.imshow(frame.values, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=vmax)
        ax.set_xticks(range(frame.shape[1]), frame.columns)
        ax.set_yticks(
            range(frame.shape[0]), [f"{s:,}" if isinstance(s, (int, np.integer)) else str(s) for s in frame.index]
        )
        ax.set_xlabel("Layer")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("Steps")
    fig.colorbar(image, ax=axes, shrink=0.9, label="share per head (1/(L·H) = uniform)")
    return fig


def readable_heatmaps(panels: dict[str, tuple[pd.DataFrame, str, float | None]]):
    """Layer × step heatmaps, each with its own colour scale: ``(frame, "log" | "linear", clip)`` per panel title.

    A linear panel with ``clip`` saturates at that value and marks every clipped cell with a dot; a log panel spans
    its own positive range.
    """
    from matplotlib.colors import LogNorm, Normalize

    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (title, (frame, scale, clip)) in zip(axes, panels.items()):
        values = frame.values
        if scale == "log":
            positive = values[values > 0]
            norm = LogNorm(vmin=float(positive.min()), vmax=float(positive.max()))
        else:
            norm = Normalize(vmin=0, vmax=clip if clip is not None else float(values.max()))
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="magma", norm=norm)
        if clip is not None:
            rows, cols = np.nonzero(values > clip)
            ax.scatter(cols, rows, s=10, color="tab:cyan", marker="o", label=f"> {clip:g} (clipped)")
            if len(rows):
                ax.legend(fontsize=7, loc="upper right")
        ax.set_xticks(range(frame.shape[1]), frame.columns)
        ax.set_yticks(
            range(frame.shape[0]), [f"{s:,}" if isinstance(s, (int, np.integer)) else str(s) for s in frame.index]
        )
        ax.set_xlabel("Layer")
        ax.set_title(title, fontsize=9)
        fig.colorbar(
            image, ax=ax, shrink=0.85, label=f"{scale} scale" + (f", clipped at {clip:g}" if clip is not None else "")
        )
    axes[0].set_ylabel("Steps")
    return fig
