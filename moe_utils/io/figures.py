"""Saving figures together with the numbers they plot, atomically."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..errors import MoeError
from . import paths
from .atomic import atomic_path


def save_table(table: pd.DataFrame | dict | list, name: str) -> Path:
    """Write ``figures/<name>.csv`` (DataFrame) or ``.json`` (dict/list) atomically; return the path."""
    folder = paths.figures_dir()
    if isinstance(table, pd.DataFrame):
        target = folder / f"{name}.csv"
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False)
    else:
        target = folder / f"{name}.json"
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(table, indent=2, default=float))
    return target


def save_fig(fig: plt.Figure, name: str, data: pd.DataFrame | dict | list, *, dpi: int = 150) -> Path:
    """Write ``figures/<name>.png`` and, beside it, the plotted numbers as ``<name>.csv``/``.json``."""
    if data is None or (isinstance(data, pd.DataFrame) and data.empty):
        raise MoeError(f"figure {name!r} needs the numbers it plots; pass them as data (a non-empty DataFrame, dict or list)")
    save_table(data, name)
    target = paths.figures_dir() / f"{name}.png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return target
