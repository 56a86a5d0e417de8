"""Notebook 07's explorer: one quantity of one layer across checkpoints, and every layer at one checkpoint."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ...io import paths
from ...io.explorer import check_choices, explore
from .tables import LayerActivationTables

QUANTITIES = (
    "importance share per head",
    "raw mean |head-mask gradient|",
    "raw mean |residual update|",
    "layer share of |head-mask gradient|",
    "relative residual update",
)


def explore_tables(folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """The first seed's per-layer quantities (``07_layer_activation.csv``) and their seed mean (``_seeds``)."""
    saved = LayerActivationTables.load(folder or paths.figures_dir())
    return {"first": saved.read_back("first_layers"), "mean": saved.read_back("seed_mean")}


def controls(tables: dict) -> dict[str, list]:
    """Quantity, layer (1-12) and checkpoint step."""
    first = tables["first"]
    return {
        "quantity": [q for q in QUANTITIES if q in first.columns],
        "layer": sorted(int(v) for v in first["layer"].unique()),
        "checkpoint": sorted(int(v) for v in first["step"].unique()),
    }


def layer_view(tables: dict, quantity: str, layer: int, checkpoint: int) -> plt.Figure:
    """Left: ``quantity`` of ``layer`` at every checkpoint (first seed and the seed mean); right: every layer at
    ``checkpoint``, the chosen layer in red."""
    check_choices(controls(tables), dict(quantity=quantity, layer=layer, checkpoint=checkpoint))
    first, mean = tables["first"], tables["mean"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for frame, label, style in ((first, "first seed", "-"), (mean, "mean of seeds", "--")):
        rows = frame[frame["layer"] == layer].sort_values("step")
        left.plot(rows["step"], rows[quantity], style, marker="o", ms=3, label=label)
    left.axvline(checkpoint, color="k", ls=":", lw=0.8)
    left.set(xlabel="training step", ylabel=quantity)
    left.set_title(f"layer {layer} across training", fontsize=10)
    left.legend(fontsize=8)
    rows = first[first["step"] == checkpoint].sort_values("layer")
    colours = ["C3" if v == layer else "C0" for v in rows["layer"]]
    right.bar(rows["layer"], rows[quantity], color=colours)
    right.set(xlabel="layer", ylabel=quantity, xticks=list(rows["layer"]))
    right.set_title(f"every layer at step {checkpoint} (first seed), layer {layer} red", fontsize=10)
    for ax, values in ((left, first[first["layer"] == layer][quantity]), (right, rows[quantity])):
        positive = values[values > 0]
        if len(positive) and positive.max() / positive.min() > 20:  # values spanning decades: a log scale
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Line plot of {choices['quantity']} of layer {choices['layer']} against training step, first seed and seed "
        f"mean; beside it bars of every layer's value at step {choices['checkpoint']}."
    )


def explorer(folder: Path | None = None):
    """Notebook 07's explorer on the tables in ``folder`` (default: this run's figures folder)."""
    tables = explore_tables(folder)
    options = controls(tables)
    view = lambda **c: layer_view(tables, **c)  # noqa: E731
    return explore(view, options, alt_text, checkpoint=options["checkpoint"][-1])
