"""The papermill pipeline: argument checks and a quick-profile run of every notebook into a temporary folder."""
from __future__ import annotations

import hashlib
import json

import pytest

from moe_utils.errors import MoeError
from moe_utils.io import paths
from moe_utils.pipeline import list_notebooks, main, parse_parameter, run_pipeline, select_notebooks


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_available() -> bool:
    return paths.mirror_dir() is not None or any(paths.PROCESSED_DIR.glob("mnist_cifar_*.pt"))


def test_notebooks_are_numbered_and_selectable():
    names = [p.name for p in list_notebooks()]
    assert names[:2] == ["01_data_setup.ipynb", "02_four_models.ipynb"]
    assert [p.name for p in select_notebooks("02")] == ["02_four_models.ipynb"]


def test_bad_arguments_are_one_line_errors(capsys):
    with pytest.raises(MoeError, match="--only='99' is not allowed; choose one of '01', '02'"):
        select_notebooks("99")
    with pytest.raises(MoeError, match="--profile='fast' is not allowed; choose one of 'full', 'quick'"):
        run_pipeline("fast")
    assert main(["--profile", "fast"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --profile='fast'") and "\n" not in err


def test_param_overrides_are_literals_and_bad_ones_are_one_line_errors(capsys):
    assert parse_parameter("EPOCHS=5") == ("EPOCHS", 5)
    assert parse_parameter("LR=1e-2") == ("LR", 0.01)
    assert parse_parameter("OPTIMIZER=sgd") == ("OPTIMIZER", "sgd")
    assert parse_parameter('LAMBDAS="0, 1"') == ("LAMBDAS", "0, 1")
    with pytest.raises(MoeError, match="--param='epochs=5' is not allowed"):
        parse_parameter("epochs=5")
    assert main(["--param", "EPOCHS"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --param='EPOCHS' is not allowed") and "\n" not in err


@pytest.mark.skipif(not data_available(), reason="no MNIST/CIFAR data: set MOE_DATA_MIRROR")
def test_every_notebook_runs_quick_into_a_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    committed = {p: digest(p) for p in list_notebooks()}
    figures_before = {p: digest(p) for p in paths.figures_dir().glob("*")} if paths.figures_dir().exists() else {}
    timings = run_pipeline("quick", output_dir=tmp_path)
    assert set(timings) == {p.name for p in committed}
    for notebook in committed:
        executed = json.loads((tmp_path / notebook.name).read_text())
        injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert injected and "quick" in "".join(injected[0]["source"])
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
    for name in ("01_samples", "01_class_counts", "02_accuracy_curves", "02_activation_rates", "02_final_accuracy"):
        assert list((tmp_path / "figures").glob(f"{name}.*")), name
    for png in (tmp_path / "figures").glob("*.png"):
        assert png.with_suffix(".csv").exists() or png.with_suffix(".json").exists(), png
    assert {p: digest(p) for p in committed} == committed  # committed notebooks untouched
    figures_after = {p: digest(p) for p in paths.figures_dir().glob("*")} if paths.figures_dir().exists() else {}
    assert figures_after == figures_before  # committed figures untouched


def test_pipeline_stops_at_first_failure_naming_notebook_and_cell(tmp_path, monkeypatch, capsys):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, body in (("01_ok", "x = 1"), ("02_bad", "raise ValueError('boom')"), ("03_never", "y = 2")):
        params = nbformat.v4.new_code_cell('PROFILE = "full"  # "full" | "quick"')
        params.metadata["tags"] = ["parameters"]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os"), params, nbformat.v4.new_code_cell(body)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    out = tmp_path / "out"
    assert main(["--profile", "quick", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: 02_bad.ipynb failed in cell 3 (execution count 4): ValueError: boom", err
    assert (out / "01_ok.ipynb").exists() and not (out / "03_never.ipynb").exists()
    assert not (out / "02_bad.ipynb").exists() and not list(out.glob(".*"))  # nothing half-written


def test_param_reaches_the_notebook(tmp_path, monkeypatch):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = nbformat.v4.new_code_cell('PROFILE = "full"  # "full" | "quick"\nEPOCHS = 3  # positive int')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os"), params, nbformat.v4.new_code_cell("assert EPOCHS == 7, EPOCHS")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "01_echo.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    out = tmp_path / "out"
    assert main(["--profile", "quick", "--output-dir", str(out), "--param", "EPOCHS=3"]) == 2  # the assert fails
    assert main(["--profile", "quick", "--output-dir", str(out), "--param", "EPOCHS=7"]) == 0
