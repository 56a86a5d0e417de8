"""Saving figures together with the numbers they plot, atomically; shown in the notebook with alternative text."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import MoeError
from . import paths
from .atomic import atomic_path
from .layout_check import overlapping_text


def save_table(table: pd.DataFrame | dict | list, name: str) -> None:
    """Write ``figures/<name>.csv`` (DataFrame) or ``.json`` (dict/list) atomically."""
    folder = paths.figures_dir()
    if isinstance(table, pd.DataFrame):
        with atomic_path(folder / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
    else:
        with atomic_path(folder / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(table, indent=2, default=float))


def save_arrays(arrays: dict[str, np.ndarray], name: str) -> None:
    """Write ``figures/<name>.npz`` (compressed; one array per key) atomically: raw tables too large for a CSV."""
    with atomic_path(paths.figures_dir() / f"{name}.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def slant_labels(ax, angle: float = 30, axis: str = "x") -> None:
    """Turn an axis's category labels by ``angle``, anchored at their tick, so long names never run together."""
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    plt.setp(labels, rotation=angle, ha="right", rotation_mode="anchor")


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
    keep = 2 if getattr(fig, "_suptitle", None) is not None else 4  # a suptitle already says what the panels show
    shown = "; ".join(parts[:keep]) + ("; …" if len(parts) > keep else "")
    return f"Figure {name}" + (f": {shown}" if shown else "") + f" (numbers in figures/{name}.csv or .json)"


def save_fig(
    fig: plt.Figure, name: str, data: pd.DataFrame | dict | list, *, alt: str | None = None, dpi: int = 150
) -> None:
    """Write ``figures/<name>.png`` and, beside it, the plotted numbers; in a notebook, show it with alt text.

    ``alt`` describes the figure for readers who cannot see it (default: built from its titles and axis labels).
    """
    if data is None or (isinstance(data, pd.DataFrame) and data.empty):
        raise MoeError(
            f"figure {name!r} needs the numbers it plots; pass them as data (a non-empty DataFrame, dict or list)"
        )
    save_table(data, name)
    clashes = overlapping_text(fig)
    if clashes:  # said in one line, and caught by the tests' quick run of every notebook
        print(f"figure {name}: overlapping text: {'; '.join(clashes[:3])}" + (" …" if len(clashes) > 3 else ""))
    target = paths.figures_dir() / f"{name}.png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    show_png(target.read_bytes(), alt or describe_figure(fig, name), scale=100 / dpi)
    plt.close(fig)


def show_png(png: bytes, alt: str, scale: float = 1.0) -> None:
    """Display PNG bytes in IPython as an ``<img>`` with ``alt`` text (HTML, so every renderer keeps the alt); else nothing.

    ``scale`` sets the displayed width relative to the pixel width (2/3 shows a 150-dpi file at the inline 100 dpi).
    """
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: nothing to show
        return
    if get_ipython() is None:
        return
    import base64
    import html
    import io

    from PIL import Image

    width = round(Image.open(io.BytesIO(png)).width * scale)
    encoded = base64.b64encode(png).decode("ascii")
    bundle = {
        "text/html": f'<img src="data:image/png;base64,{encoded}" width="{width}" alt="{html.escape(alt)}"/>',
        "text/plain": alt,
    }
    display(bundle, raw=True)
