"""A study's Tables: its file names, save and load, and the one way notebooks and docs reach saved results."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from moe_utils.errors import MoeError
from moe_utils.io import paths
from moe_utils.io.tables import Tables
from moe_utils.pipeline import list_notebooks
from moe_utils.readme import STUDIES
from moe_utils.studies import real_models


@dataclass
class ToyTables(Tables):
    """Three kinds of saved table and one in-memory extra."""

    FILES = {"curve": "99_curve", "info": "99_info", "counts": "99_counts"}

    curve: pd.DataFrame
    info: dict
    counts: dict
    model: object = None


def toy() -> ToyTables:
    return ToyTables(
        pd.DataFrame({"layer": [1, 2], "value": [0.25, 0.5]}), {"runs": 2}, {"a:b": np.arange(6).reshape(2, 3)}
    )


def test_save_then_load_gives_the_same_tables(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path))
    toy().save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["99_counts.npz", "99_curve.csv", "99_info.json"]
    loaded = ToyTables.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.curve, toy().curve)
    assert loaded.info == {"runs": 2} and (loaded.counts["a:b"] == np.arange(6).reshape(2, 3)).all()
    assert loaded.model is None  # in-memory extras are not saved


def test_a_figure_is_saved_beside_its_table_under_the_tables_name(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.25, 0.5])
    toy().save_figure("curve", fig)
    assert {p.name for p in tmp_path.iterdir()} == {"99_curve.csv", "99_curve.png"}


def test_unknown_and_missing_tables_are_one_line(tmp_path):
    with pytest.raises(MoeError, match=r"table 'curves' is not one of ToyTables's: curve, info, counts"):
        toy().stem("curves")
    with pytest.raises(MoeError, match=r"table 'curve' \(99_curve\) is missing"):
        ToyTables.load(tmp_path).read_back("curve")


def test_a_pickle_is_never_read_back(tmp_path):
    np.savez(tmp_path / "99_counts.npz", bad=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        ToyTables.load(tmp_path).counts["bad"]


def test_notebooks_name_no_table_file():
    for path in list_notebooks():
        if path.name[:2] not in {*STUDIES, "08"}:
            continue
        cells = json.loads(path.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        named = re.findall(r"[\"']0\d_\w+[\"']", code)
        assert not named, f"{path.name} names table files {named}; save through its Tables"


@pytest.mark.parametrize("number", sorted(STUDIES))
def test_every_committed_table_of_a_study_is_named_by_its_tables(number):
    files = set(STUDIES[number].Tables.FILES.values())
    committed = {
        p.stem for p in (paths.REPO_ROOT / "figures").glob(f"{number}_*") if p.suffix in {".csv", ".json", ".npz"}
    }
    assert committed <= files, f"committed but not in the Tables: {sorted(committed - files)}"
    loaded = STUDIES[number].Tables.load()
    assert all(
        getattr(loaded, key) is not None for key, stem in STUDIES[number].Tables.FILES.items() if stem in committed
    )


def test_notebook_08s_tables_carry_the_models_prefix():
    loaded = real_models.Tables.load(prefix="08_smollm2")
    assert loaded.stem("accuracy") == "08_smollm2_accuracy" and loaded.read_back("info")["tag"] == "smollm2"
    committed = {p.stem.removeprefix("08_smollm2_") for p in (paths.REPO_ROOT / "figures").glob("08_smollm2_*.csv")}
    named = {stem.removeprefix("{prefix}_") for stem in real_models.Tables.FILES.values()}
    assert committed <= named, sorted(committed - named)
