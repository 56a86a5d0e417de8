"""Kept results without pickles: an object tree as JSON beside its tensors (``torch.save``, read ``weights_only``).

What can be kept: None, bools, numbers, strings, lists, tuples, dicts, slices, paths, tensors, numpy arrays and scalars, pandas
DataFrames and Series, dataclasses defined in ``moe_utils``, and ``moe_utils`` classes (models, dataclasses holding
models) that write themselves through ``kept_record()`` and are rebuilt by their classmethod
``from_kept_record(record)``. Reading one back imports nothing
outside ``moe_utils``, calls no constructor but those of these dataclasses, and unpickles nothing but tensors.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import torch

from ..errors import MoeError

TREE_SUFFIX = ".json"
TENSORS_SUFFIX = ".tensors.pt"
PACKAGE = "moe_utils."


class _Encoder:
    """Turns an object into a JSON tree, collecting its tensors by name."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}

    def tensor(self, value: torch.Tensor) -> str:
        """Collect ``value`` (on the CPU) and return the name it is kept under."""
        name = f"t{len(self.tensors)}"
        self.tensors[name] = value.detach().cpu()
        return name

    def __call__(self, obj):
        if obj is None or isinstance(obj, (bool, int, float, str)) and not isinstance(obj, np.generic):
            return obj
        if isinstance(obj, np.generic):
            return {"__np_scalar__": obj.dtype.str, "value": obj.item()}
        if isinstance(obj, list):
            return [self(v) for v in obj]
        if isinstance(obj, tuple):
            return {"__tuple__": [self(v) for v in obj]}
        if isinstance(obj, dict):
            return {"__dict__": [[self(k), self(v)] for k, v in obj.items()]}
        if isinstance(obj, slice):
            return {"__slice__": [obj.start, obj.stop, obj.step]}
        if isinstance(obj, PurePath):
            return {"__path__": str(obj)}
        if isinstance(obj, torch.Tensor):
            return {"__tensor__": self.tensor(obj)}
        if isinstance(obj, np.ndarray):
            return self.array(obj)
        if isinstance(obj, pd.DataFrame):
            return {
                "__frame__": {
                    "columns": self.index(obj.columns),
                    "index": self.index(obj.index),
                    "data": [self.array(obj.iloc[:, i].array, obj.dtypes.iloc[i]) for i in range(obj.shape[1])],
                }
            }
        if isinstance(obj, pd.Series):
            return {
                "__series__": {"name": self(obj.name), "index": self.index(obj.index), "data": self.array(obj.array)}
            }
        kind = type(obj)
        path = f"{kind.__module__}.{kind.__qualname__}"
        if hasattr(kind, "from_kept_record") and path.startswith(PACKAGE):
            return {"__record__": path, "value": self(obj.kept_record())}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            if not path.startswith(PACKAGE):
                raise TypeError(f"cannot keep a {path}: only moe_utils dataclasses are kept")
            return {
                "__dataclass__": path,
                "fields": {f.name: self(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
            }
        raise TypeError(f"cannot keep a {type(obj).__module__}.{type(obj).__qualname__} without pickling it")

    def array(self, values, dtype=None) -> dict:
        """A numpy or pandas array: numeric ones as a tensor, the rest as a JSON list with their dtype."""
        dtype = values.dtype if dtype is None else dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf" and dtype.str not in ("<u2", "<u4", "<u8"):
            data = torch.from_numpy(np.array(values, copy=True))  # a writable copy (pandas' arrays are read-only)
            return {"__array__": self.tensor(data), "dtype": dtype.str, "numpy": isinstance(values, np.ndarray)}
        missing_is_nan = str(dtype) != "object"  # pandas' string dtypes mark missing values with NaN or NA
        items = [None if v is pd.NA or (missing_is_nan and isinstance(v, float) and np.isnan(v)) else v for v in values]
        return {
            "__list_array__": [self(v) for v in items],
            "dtype": str(dtype),
            "shape": list(np.shape(values)),
            "numpy": isinstance(values, np.ndarray),
        }

    def index(self, index: pd.Index) -> dict:
        """A pandas index: a RangeIndex by its bounds, a MultiIndex by its levels and codes, any other by its values."""
        if isinstance(index, pd.RangeIndex):
            return {"range": [index.start, index.stop, index.step], "name": self(index.name)}
        if isinstance(index, pd.MultiIndex):
            return {
                "levels": [self.index(level) for level in index.levels],
                "codes": [self.array(np.asarray(codes)) for codes in index.codes],
                "names": [self(n) for n in index.names],
            }
        return {"values": self.array(index.array, index.dtype), "name": self(index.name)}


class _Decoder:
    """Rebuilds an object from its JSON tree and its tensors."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    def __call__(self, node):
        if isinstance(node, list):
            return [self(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "__np_scalar__" in node:
            return np.dtype(node["__np_scalar__"]).type(node["value"])
        if "__tuple__" in node:
            return tuple(self(v) for v in node["__tuple__"])
        if "__dict__" in node:
            return {self(k): self(v) for k, v in node["__dict__"]}
        if "__slice__" in node:
            return slice(*node["__slice__"])
        if "__path__" in node:
            return Path(node["__path__"])
        if "__tensor__" in node:
            return self.tensors[node["__tensor__"]]
        if "__array__" in node or "__list_array__" in node:
            return self.array(node)
        if "__frame__" in node:
            frame = node["__frame__"]
            columns = self.index(frame["columns"])
            data = {i: pd.Series(self.array(c), dtype=self.dtype(c)) for i, c in enumerate(frame["data"])}
            out = pd.DataFrame(data)
            out.index, out.columns = self.index(frame["index"]), columns
            return out
        if "__series__" in node:
            series = node["__series__"]
            return pd.Series(self.array(series["data"]), index=self.index(series["index"]), name=self(series["name"]))
        if "__record__" in node:
            return known_type(node["__record__"]).from_kept_record(self(node["value"]))
        if "__dataclass__" in node:
            kind = known_type(node["__dataclass__"])
            obj = object.__new__(kind)
            for name, value in node["fields"].items():
                object.__setattr__(obj, name, self(value))
            return obj
        raise ValueError(f"unknown node {sorted(node)[:3]}")

    def array(self, node):
        """A numpy or pandas array back from ``_Encoder.array``."""
        if "__array__" in node:
            values = self.tensors[node["__array__"]].numpy()
            return values if node["numpy"] else pd.array(values, dtype=np.dtype(node["dtype"]))
        values = [self(v) for v in node["__list_array__"]]
        if node["numpy"]:
            out = np.empty(len(values), dtype=np.dtype(node["dtype"]))
            out[:] = values
            return out.reshape(node["shape"])
        return pd.array(values, dtype=pd.api.types.pandas_dtype(node["dtype"]))

    @staticmethod
    def dtype(node):
        """The dtype an array was kept with."""
        return np.dtype(node["dtype"]) if "__array__" in node else pd.api.types.pandas_dtype(node["dtype"])

    def index(self, node) -> pd.Index:
        """A pandas index back from ``_Encoder.index``."""
        if "range" in node:
            return pd.RangeIndex(*node["range"], name=self(node["name"]))
        if "levels" in node:
            levels = [self.index(level) for level in node["levels"]]
            codes = [self.array(c) for c in node["codes"]]
            return pd.MultiIndex(levels=levels, codes=codes, names=[self(n) for n in node["names"]])
        return pd.Index(self.array(node["values"]), dtype=self.dtype(node["values"]), name=self(node["name"]))


def known_type(path: str) -> type:
    """The moe_utils dataclass or keepable class named ``path`` (module.Qualname); anything else is refused."""
    module, _, name = path.rpartition(".")
    refused = MoeError(f"kept result names {path!r}, not a moe_utils dataclass or model; refusing to load it")
    if not path.startswith(PACKAGE) or not name.isidentifier():
        raise refused
    kind = getattr(importlib.import_module(module), name, None)
    if not (isinstance(kind, type) and (dataclasses.is_dataclass(kind) or hasattr(kind, "from_kept_record"))):
        raise refused
    return kind


def save_object(obj, folder: Path, stem: str) -> None:
    """Write ``obj`` as ``<stem>.json`` and ``<stem>.tensors.pt`` in ``folder``."""
    encode = _Encoder()
    tree = encode(obj)
    torch.save(encode.tensors, Path(folder) / f"{stem}{TENSORS_SUFFIX}")
    (Path(folder) / f"{stem}{TREE_SUFFIX}").write_text(json.dumps(tree))


def load_object(folder: Path, stem: str):
    """The object kept by ``save_object``; tensors are read with ``weights_only=True`` (no code runs)."""
    tensors = torch.load(Path(folder) / f"{stem}{TENSORS_SUFFIX}", weights_only=True)
    return _Decoder(tensors)(json.loads((Path(folder) / f"{stem}{TREE_SUFFIX}").read_text()))


def kept_files(stem: str) -> tuple[str, str]:
    """The two file names ``save_object`` writes for ``stem``."""
    return f"{stem}{TREE_SUFFIX}", f"{stem}{TENSORS_SUFFIX}"
