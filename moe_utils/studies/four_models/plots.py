"""Notebook 02's figure: source 004's Figure 1, accuracy per epoch in the source's colours."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...exp1.figure_style import COINCIDE, MODEL_COLORS, SPLIT_STYLES, style_accuracy_axes


def accuracy_curves(history: pd.DataFrame, title: str = "Accuracy per epoch"):
    """The source's Figure 1: one line per model and split (solid train, dashed test)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    drawn: dict[str, list[tuple[str, np.ndarray]]] = {}  # split -> the curves drawn so far
    for (model, split), frame in history.groupby(["model", "split"], sort=False):
        accuracy = frame["accuracy"].to_numpy()
        twin = next(
            (m for m, a in drawn.get(split, []) if len(a) == len(accuracy) and np.abs(a - accuracy).max() < COINCIDE),
            None,
        )
        drawn.setdefault(split, []).append((model, accuracy))
        extra = {"marker": "o", "markersize": 4, "markerfacecolor": "none"} if twin else {}  # so both curves show
        ax.plot(
            frame["epoch"],
            accuracy,
            SPLIT_STYLES[split],
            color=MODEL_COLORS.get(model),
            label=f"{model} ({split})" + (f"; coincides with {twin}" if twin else ""),
            **extra,
        )
    style_accuracy_axes(ax, title)
    return fig
