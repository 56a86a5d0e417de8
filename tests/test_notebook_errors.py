"""In a notebook, the project's own errors show as one line, and the cell still fails."""

from __future__ import annotations

import json

import nbformat
import papermill as pm
import pytest
from papermill.exceptions import PapermillExecutionError

from moe_utils.pipeline import kernel_name


def test_a_bad_parameter_in_a_notebook_is_one_line_not_a_traceback(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("from moe_utils.studies.four_models.settings import FourModelsSettings"),
        nbformat.v4.new_code_cell("LR = 1e999  # as a user might type it\nPROFILE = 'quick'"),
        nbformat.v4.new_code_cell("settings = FourModelsSettings.for_notebook(globals())"),
        nbformat.v4.new_code_cell("never = 1"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": kernel_name(), "display_name": "Python", "language": "python"}
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, str(source))
    with pytest.raises(PapermillExecutionError) as err:
        pm.execute_notebook(str(source), str(executed), kernel_name=kernel_name(), progress_bar=False)
    assert err.value.ename == "MoeError" and "LR=inf is not allowed" in err.value.evalue
    cells = json.loads(executed.read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors[0]["traceback"] == ["error: LR=inf is not allowed; it must be a finite number"]
