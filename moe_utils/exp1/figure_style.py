"""Experiment 1's figure style, shared by notebooks 02 and 03: source 004's model colours, splits, datasets, axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

MODELS = ["single expert", "pre-designed gate", "linear gate", "1-hidden-layer gate"]  # source 004's four, in order

# Figure 1 of source 004: blue single expert, green pre-designed, red linear gate, cyan 1-hidden-layer gate.
MODEL_COLORS = {
    "single expert": "tab:blue",
    "pre-designed gate": "tab:green",
    "linear gate": "tab:red",
    "1-hidden-layer gate": "c",
}

SPLIT_STYLES = {"train": "-", "test": "--"}


def datasets_in(table: pd.DataFrame) -> list[str]:
    """The dataset names of a long table in order of first appearance (the first dataset first)."""
    return list(dict.fromkeys(table["dataset"]))


COINCIDE = 0.005  # curves closer than this at every epoch are drawn with markers and said to coincide


def style_accuracy_axes(ax, title: str) -> None:
    """Labels, grid, integer epochs and a legend outside the axes, shared by every accuracy-per-epoch plot."""
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))


DATASET_COLORS = ("tab:purple", "tab:orange")  # first, second dataset
