"""Every notebook's parameters cell lists exactly its settings dataclass's fields, with the dataclass's defaults."""

from __future__ import annotations

import ast
import dataclasses

import papermill as pm
import pytest

from moe_utils.pipeline import list_notebooks
from moe_utils.studies import (
    cognitive_mirrors,
    expert_load,
    head_importance,
    layer_activation,
    real_models,
    routing_stability,
    upcycled_moe,
)
from moe_utils.studies.data_setup.settings import DataSetupSettings
from moe_utils.studies.four_models.settings import FourModelsSettings
from moe_utils.studies.gate_analysis.settings import GateAnalysisSettings

SETTINGS = [
    DataSetupSettings,
    FourModelsSettings,
    GateAnalysisSettings,
    *(
        s.Settings
        for s in (
            routing_stability,
            expert_load,
            head_importance,
            layer_activation,
            real_models,
            upcycled_moe,
            cognitive_mirrors,
        )
    ),
]
BY_NOTEBOOK = {cls.NOTEBOOK: cls for cls in SETTINGS}


def cell_defaults(notebook) -> dict:
    """NAME -> the literal value of the notebook's parameters cell (papermill's own reader)."""
    return {name: ast.literal_eval(p["default"]) for name, p in pm.inspect_notebook(str(notebook)).items()}


def test_every_notebook_has_a_settings_class():
    assert {p.stem for p in list_notebooks()} == set(BY_NOTEBOOK)


@pytest.mark.parametrize("notebook", list_notebooks(), ids=lambda p: p.stem)
def test_the_parameters_cell_is_the_settings_dataclass(notebook):
    cls = BY_NOTEBOOK[notebook.stem]
    cell = cell_defaults(notebook)
    fields = {f.name.upper(): f.default for f in dataclasses.fields(cls)}
    only_cell, only_class = set(cell) - set(fields), set(fields) - set(cell)
    assert not only_cell and not only_class, f"only in the cell: {only_cell}; only in the dataclass: {only_class}"
    different = {name: (cell[name], fields[name]) for name in cell if cell[name] != fields[name]}
    assert not different, f"{notebook.name}: parameter defaults (cell, dataclass) differ: {different}"


def test_a_changed_default_is_caught(tmp_path):
    import nbformat

    notebook = next(p for p in list_notebooks() if p.stem == routing_stability.Settings.NOTEBOOK)
    nb = nbformat.read(str(notebook), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = cell.source.replace("N_EXPERTS = 8", "N_EXPERTS = 16")
    changed = tmp_path / notebook.name
    nbformat.write(nb, str(changed))
    assert cell_defaults(changed)["N_EXPERTS"] != routing_stability.Settings.n_experts
