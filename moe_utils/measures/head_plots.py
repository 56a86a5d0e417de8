"""Pictures of the head measures that notebooks 06 and 08 share: the cross-task ablation matrices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def cross_matrices(cross: pd.DataFrame, title: str) -> plt.Figure:
    """Accuracy drop of every task (columns) when each task's top heads (rows) are masked, one panel per method,
    values written in; ``cross`` has method, masked, measured, drop (tasks in their order of appearance)."""
    import seaborn as sns

    methods = list(dict.fromkeys(cross["method"]))
    order = list(dict.fromkeys(cross["masked"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(7 * len(methods), 5.8))
    for ax, method in zip(np.atleast_1d(axes), methods):
        grid = (
            cross[cross["method"] == method].pivot(index="masked", columns="measured", values="drop").loc[order, order]
        )
        limit = max(0.05, float(np.abs(grid.values).max()))
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=".2f",
            annot_kws={"fontsize": 7},
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            cbar_kws={"label": "accuracy drop"},
        )
        ax.set_title(method)
        ax.set_xlabel("measured family")
        ax.set_ylabel("family whose top heads are masked")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
