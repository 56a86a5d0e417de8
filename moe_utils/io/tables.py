"""A study's tables, its one contract with notebooks, explorers and docs: each owns its file names, saves and loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import MoeError
from . import paths
from .figures import save_arrays, save_fig, save_table


class Tables:
    """Mixin for a study's tables dataclass: ``FILES`` maps each saved table (an attribute) to its file stem.

    The notebook saves through ``save_figure``/``save_table`` (a figure and the numbers it plots, or a table alone);
    ``save`` writes every saved table at once; ``load`` reads them back from a figures folder, so explorers and
    docs read results only through the study's own names. A loaded object holds the saved tables; the run's
    in-memory extras (models, the first seed's result) are None."""

    FILES: ClassVar[dict[str, str]] = {}  # attribute -> file stem under figures/ (``.csv``, ``.json`` or ``.npz``)

    def stem(self, key: str) -> str:
        """The file stem of saved table ``key`` (``04_jaccard_vs_sigma``), with this run's prefix."""
        if key not in self.FILES:
            raise MoeError(f"table {key!r} is not one of {type(self).__name__}'s: {', '.join(self.FILES)}")
        return self.FILES[key].format(prefix=getattr(self, "prefix", "") or "")  # "{prefix}": notebook 08's model

    def save_figure(self, key: str, fig, data=None, **kwargs) -> None:
        """Save ``fig`` as ``figures/<stem>.png`` beside its numbers: table ``key`` (or ``data`` when the figure
        plots a part of it: then ``data`` is what is saved under that name)."""
        save_fig(fig, self.stem(key), getattr(self, key) if data is None else data, **kwargs)

    def save_table(self, key: str, data=None) -> None:
        """Save table ``key`` (or ``data`` under its name) as ``figures/<stem>.csv`` (a DataFrame), ``.npz`` (a dict of
        arrays) or ``.json`` (any other dict or list)."""
        value = getattr(self, key) if data is None else data
        if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            save_arrays(value, self.stem(key))
        else:
            save_table(value, self.stem(key))

    def save(self) -> None:
        """Save every table this object holds (those that are None are left out) into the figures folder."""
        for key in self.FILES:
            value = getattr(self, key, None)
            if value is not None and not (isinstance(value, pd.DataFrame) and value.empty):
                self.save_table(key)

    @classmethod
    def load(cls, folder: Path | None = None, prefix: str = ""):
        """The saved tables of a run from ``folder`` (default: the committed ``figures/``): every file of ``FILES``
        that exists, as a DataFrame (``.csv``), a dict (``.json``) or a dict of arrays (``.npz``, never unpickled); the
        others, and every other field, None."""
        folder = Path(folder) if folder is not None else paths.REPO_ROOT / "figures"
        tables = cls.__new__(cls)
        for field in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            object.__setattr__(tables, field.name, None)
        object.__setattr__(tables, "prefix", prefix)
        for key in cls.FILES:
            stem = tables.stem(key)
            csv, js, npz = (folder / f"{stem}.{suffix}" for suffix in ("csv", "json", "npz"))
            value = None
            if csv.exists():
                value = pd.read_csv(csv)
            elif js.exists():
                value = json.loads(js.read_text())
            elif npz.exists():
                with np.load(npz, allow_pickle=False) as arrays:  # arrays only: nothing read back runs code
                    value = {name: arrays[name] for name in arrays.files}
            object.__setattr__(tables, key, value)
        return tables

    def read_back(self, key: str):
        """Table ``key`` of a loaded run, or a one-line MoeError naming its file when that run did not save it."""
        value = getattr(self, key, None)
        if value is None:
            raise MoeError(f"table {key!r} ({self.stem(key)}) is missing from the run's folder; run its notebook first")
        return value
