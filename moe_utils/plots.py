"""Experiment 1's plots: sample grid and accuracy curves in the seed's colours."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

# Figure 1 of the seed: blue single expert, green pre-designed, red linear gate, cyan 1-hidden-layer gate.
MODEL_COLORS = {
    "single expert": "tab:blue",
    "pre-designed gate": "tab:green",
    "linear gate": "tab:red",
    "1-hidden-layer gate": "c",
}
SPLIT_STYLES = {"train": "-", "test": "--"}


def sample_grid(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], per_class: int = 6):
    """A figure with ``per_class`` example images of every class, and the (class, row index) of each."""
    n_classes = len(class_names)
    fig, axes = plt.subplots(per_class, n_classes, figsize=(n_classes * 0.8, per_class * 0.85))
    picked = []
    for c in range(n_classes):
        rows = torch.nonzero(labels == c).flatten()[:per_class].tolist()
        for r, index in enumerate(rows):
            ax = axes[r, c]
            ax.imshow(images[index].numpy(), cmap="gray", vmin=0, vmax=255)
            picked.append({"class": c, "class_name": class_names[c], "row": r, "index": index})
        axes[0, c].set_title(class_names[c].split(":")[1], fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("MNIST (classes 0-9) and CIFAR-10 (classes 10-19), 32×32 grayscale", fontsize=9)
    return fig, pd.DataFrame(picked)


def accuracy_curves(history: pd.DataFrame, title: str = "Accuracy per epoch"):
    """The seed's Figure 1: one line per model and split (solid train, dashed test)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (model, split), frame in history.groupby(["model", "split"], sort=False):
        ax.plot(frame["epoch"], frame["accuracy"], SPLIT_STYLES[split], color=MODEL_COLORS.get(model), label=f"{model} ({split})")
    style_accuracy_axes(ax, title)
    return fig


def style_accuracy_axes(ax, title: str) -> None:
    """Labels, grid, integer epochs and a legend outside the axes, shared by every accuracy-per-epoch plot."""
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))


def pixel_histogram(images: torch.Tensor, is_mnist: torch.Tensor):
    """Histogram of pixel intensities for MNIST and CIFAR images, and the counts plotted."""
    bins = np.arange(0, 257, 8)
    fig, ax = plt.subplots(figsize=(6, 3))
    rows = []
    for name, mask in (("MNIST", is_mnist), ("CIFAR", ~is_mnist)):
        counts, _ = np.histogram(images[mask].numpy().ravel(), bins=bins)
        share = counts / counts.sum()
        ax.stairs(share, bins, label=name)
        rows += [{"dataset": name, "bin_start": int(b), "share": float(s)} for b, s in zip(bins[:-1], share)]
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("share of pixels")
    ax.legend()
    return fig, pd.DataFrame(rows)
