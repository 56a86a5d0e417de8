"""Saving figures together with the numbers they plot, atomically; shown in the notebook with alternative text."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd

from ..errors import MoeError
from . import paths
from .atomic import atomic_path


def save_table(table: pd.DataFrame | dict | list, name: str) -> None:
    """Write ``figures/<name>.csv`` (DataFrame) or ``.json`` (dict/list) atomically."""
    folder = paths.figures_dir()
    if isinstance(table, pd.DataFrame):
        with atomic_path(folder / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
    else:
        with atomic_path(folder / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(table, indent=2, default=float))


def describe_figure(fig: plt.Figure, name: str) -> str:
    """A short text description of a figure from its titles and axis labels (its alternative text)."""
    parts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        axis = " vs ".join(t for t in (ax.get_ylabel(), ax.get_xlabel()) if t)
        title = ax.get_title()
        text = f"{title}: {axis}" if title and axis else title or axis
        if text and text not in parts:
            parts.append(text)
    shown = "; ".join(parts[:6]) + ("; …" if len(parts) > 6 else "")
    return f"Figure {name}" + (f": {shown}" if shown else "") + f" (numbers in figures/{name}.csv or .json)"


def save_fig(fig: plt.Figure, name: str, data: pd.DataFrame | dict | list, *, alt: str | None = None, dpi: int = 150) -> None:
    """Write ``figures/<name>.png`` and, beside it, the plotted numbers; in a notebook, show it with alt text.

    ``alt`` describes the figure for readers who cannot see it (default: built from its titles and axis labels).
    """
    if data is None or (isinstance(data, pd.DataFrame) and data.empty):
        raise MoeError(f"figure {name!r} needs the numbers it plots; pass them as data (a non-empty DataFrame, dict or list)")
    save_table(data, name)
    with atomic_path(paths.figures_dir() / f"{name}.png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    show_with_alt(fig, alt or describe_figure(fig, name))


def show_with_alt(fig: plt.Figure, alt: str) -> None:
    """Display ``fig`` once, with ``alt`` as its alternative text, when running in IPython; then close it."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: nothing to show
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None and "inline" in plt.get_backend():
        display(fig, metadata={"image/png": {"alt": alt}})
    plt.close(fig)
