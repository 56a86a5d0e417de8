"""Notebook 01's figures: example images of every class and the two datasets' pixel histograms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch


def sample_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    per_class: int = 6,
    names: tuple[str, str] = ("MNIST", "CIFAR-10"),
    n_first: int = 10,
):
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
    title = f"{names[0]} (classes 0-{n_first - 1}) and {names[1]} (classes {n_first}-{n_classes - 1}), 32×32 grayscale"
    fig.suptitle(title, fontsize=9)
    return fig, pd.DataFrame(picked)


def pixel_histogram(images: torch.Tensor, is_first: torch.Tensor, names: tuple[str, str] = ("MNIST", "CIFAR")):
    """Histogram of pixel intensities of the two datasets (``names``: first = ``is_first``), and the counts plotted."""
    bins = np.arange(0, 257, 8)
    fig, ax = plt.subplots(figsize=(6, 3))
    rows = []
    for name, mask in ((names[0], is_first), (names[1], ~is_first)):
        counts, _ = np.histogram(images[mask].numpy().ravel(), bins=bins)
        share = counts / counts.sum()
        ax.stairs(share, bins, label=name)
        rows += [{"dataset": name, "bin_start": int(b), "share": float(s)} for b, s in zip(bins[:-1], share)]
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("share of pixels")
    ax.legend()
    return fig, pd.DataFrame(rows)
