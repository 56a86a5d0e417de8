"""The papermill pipeline: argument checks and a quick-profile run of every notebook into a temporary folder."""

from __future__ import annotations

import json
import os

import pytest
import torch
from conftest import digest

from moe_utils.errors import MoeError
from moe_utils.io import paths
from moe_utils.pipeline import (
    list_notebooks,
    main,
    notebook_parameters,
    output_lock,
    parse_parameter,
    run_pipeline,
    select_notebooks,
)


def data_available() -> bool:
    return paths.mirror_dir() is not None or any(paths.PROCESSED_DIR.glob("images_*.pt"))


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
def test_every_notebook_runs_quick_into_a_temporary_folder(quick_run, monkeypatch):
    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    tmp_path, committed, figures_before = quick_run.out, quick_run.committed, quick_run.figures
    assert set(quick_run.timings) == {p.name for p in committed}
    for notebook in committed:
        executed = json.loads((tmp_path / notebook.name).read_text())
        injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert injected and "quick" in "".join(injected[0]["source"])
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
        printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
        assert "overlapping text" not in printed, (
            notebook.name,
            printed[printed.find("overlapping text") - 80 :][:300],
        )
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
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("import os"), params, nbformat.v4.new_code_cell(body)]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    out = tmp_path / "out"
    assert main(["--profile", "quick", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    expected = "error: 02_bad.ipynb failed in cell 3 (execution count 4): ValueError: boom (traceback in "
    assert err.startswith(expected) and err.endswith("02_bad.failed.ipynb)") and "\n" not in err, err
    failed = json.loads((out / "logs" / "02_bad.failed.ipynb").read_text())  # the executed notebook, traceback kept
    assert any(o.get("ename") == "ValueError" for c in failed["cells"] for o in c.get("outputs", []))
    assert (out / "01_ok.ipynb").exists() and not (out / "03_never.ipynb").exists()
    assert not (out / "02_bad.ipynb").exists() and not list(out.glob(".*"))  # nothing half-written


def test_param_reaches_the_notebook(tmp_path, monkeypatch):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = nbformat.v4.new_code_cell('PROFILE = "full"  # "full" | "quick"\nEPOCHS = 3  # positive int')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import os"), params, nbformat.v4.new_code_cell("assert EPOCHS == 7, EPOCHS")]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "01_echo.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    out = tmp_path / "out"
    assert main(["--profile", "quick", "--output-dir", str(out), "--param", "EPOCHS=3"]) == 2  # the assert fails
    assert main(["--profile", "quick", "--output-dir", str(out), "--param", "EPOCHS=7"]) == 0


def tiny_notebooks(
    folder, bodies: dict[str, str], parameters: str = 'PROFILE = "full"  # "full" | "quick"\nEPOCHS = 3  # positive int'
):
    """Numbered notebooks with a parameters cell and one body cell each, in ``folder``."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        params = nbformat.v4.new_code_cell(parameters)
        params.metadata["tags"] = ["parameters"]
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("import os"), params, nbformat.v4.new_code_cell(body)]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


def test_an_unknown_parameter_name_stops_before_anything_runs(tmp_path, monkeypatch, capsys):
    tiny_notebooks(tmp_path / "notebooks", {"01_echo": "open('ran', 'w').write('x')"})
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    assert main(["--profile", "quick", "--output-dir", str(tmp_path / "out"), "--param", "EPOCH=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "error: --param EPOCH: 01_echo.ipynb has no parameter 'EPOCH' (closest: EPOCHS); "
        "use --only to run the notebooks that have it"
    ), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "notebooks" / "ran").exists()


def test_real_notebook_parameters_are_known(capsys):
    assert {"SEED", "DEVICE", "PROFILE", "EPOCHS"} <= set(
        notebook_parameters(paths.NOTEBOOKS_DIR / "02_four_models.ipynb")
    )
    assert main(["--only", "02", "--param", "GATE=foo"]) == 2
    assert "02_four_models.ipynb has no parameter 'GATE'" in capsys.readouterr().err


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    assert main(["--profile", "quick", "--only", "01", "--output-dir", str(afile)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --output-dir='{afile}' is not allowed; {afile} is an existing file, not a folder", err
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "figures").write_text("oops")
    assert main(["--profile", "quick", "--only", "01", "--output-dir", str(folder)]) == 2
    assert "figures is an existing file, not a folder" in capsys.readouterr().err


def test_a_failing_run_in_place_leaves_committed_files_untouched(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "notebooks"
    body = "from moe_utils.io.figures import save_table\nsave_table({'n': 2}, '01_numbers')\nraise ValueError('bad parameter')"
    tiny_notebooks(folder, {"01_writes_then_fails": body})
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "01_numbers.json").write_text('{"n": 1}')  # the committed table
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", folder)
    monkeypatch.setenv(paths.FIGURES_ENV, str(figures))
    committed = (folder / "01_writes_then_fails.ipynb").read_bytes()
    assert main(["--profile", "quick"]) == 2
    assert "ValueError: bad parameter" in capsys.readouterr().err
    assert (figures / "01_numbers.json").read_text() == '{"n": 1}'
    assert (folder / "01_writes_then_fails.ipynb").read_bytes() == committed
    assert not list(folder.glob(".*")) and not list(figures.glob(".*"))  # no staging folder or temporary left


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path, monkeypatch):
    import subprocess
    import sys

    tiny_notebooks(tmp_path / "notebooks", {"01_ok": "x = 1"})
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale_file = out / f".01_ok.pid{dead}.abcd.tmp.ipynb"
    stale_file.write_text("{}")
    stale_stage = out / f".01_ok.pid{dead}.efgh.staging"
    stale_stage.mkdir()
    stale_repo_stage = tmp_path / "notebooks" / f".01_ok.pid{dead}.ijkl.staging"  # a killed in-place run's
    stale_repo_stage.mkdir()
    assert main(["--profile", "quick", "--output-dir", str(out)]) == 0
    assert not stale_file.exists() and not stale_stage.exists() and (out / "01_ok.ipynb").exists()
    assert not stale_repo_stage.exists()  # cleaned by a run with --output-dir too


@pytest.mark.skipif(not data_available(), reason="no MNIST/CIFAR data: set MOE_DATA_MIRROR")
@pytest.mark.parametrize(
    "param, expected",
    [
        ('EPOCHS="5"', "EPOCHS='5' is not allowed; it must be a positive integer"),
        ('SEED="x"', "SEED='x' is not allowed; it must be an integer"),
        ("LR=-1", "LR=-1 is not allowed; it must be a positive number"),
    ],
)
def test_a_wrong_type_is_one_line_naming_the_parameter(param, expected, tmp_path, capsys):
    assert main(["--profile", "quick", "--only", "02", "--output-dir", str(tmp_path), "--param", param]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: 02_four_models.ipynb failed in cell") and err.endswith(f"MoeError: {expected}"), err
    assert not list(tmp_path.glob("*.ipynb")) and not (tmp_path / "figures").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["--profile", "quick", "--only", "04", "--output-dir", str(tmp_path), "--param", 'DEVICE="cuda"']) == 2
    err = capsys.readouterr().err.strip()
    assert "MoeError: DEVICE='cuda' is not allowed; this machine has no CUDA device" in err and "\n" not in err


def test_a_run_on_another_model_keeps_its_own_executed_notebook():
    from moe_utils.pipeline import executed_name, list_notebooks

    notebook = next(p for p in list_notebooks() if p.name.startswith("08"))
    assert executed_name(notebook, {"MODEL": "gemma3"}) == "08_real_models.gemma3.ipynb"
    assert executed_name(notebook, {"MODEL": "smollm2"}) == notebook.name  # the default model: the notebook itself
    assert executed_name(notebook, {"SEED": 1}) == notebook.name
    assert all("." not in p.stem for p in list_notebooks())  # executed copies are not notebooks of their own


def test_a_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    tiny_notebooks(tmp_path / "notebooks", {"01_echo": "open('ran', 'w').write('x')"})
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    assert main(["--profile", "quick", "--output-dir", "/proc/moe-out"]) == 2  # not writable, even for root
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: --output-dir='/proc/moe-out' is not allowed; cannot write there (") and "\n" not in err
    )
    assert not (tmp_path / "notebooks" / "ran").exists()
    if os.geteuid() != 0:  # a read-only folder (root may write anywhere, so only for other users)
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o555)
        assert main(["--profile", "quick", "--output-dir", str(locked)]) == 2
        assert "cannot write there (Permission denied)" in capsys.readouterr().err


def test_a_second_run_into_the_same_folder_is_refused_with_one_line(tmp_path, monkeypatch, capsys):
    tiny_notebooks(tmp_path / "notebooks", {"01_echo": "x = 1"})
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    out = tmp_path / "out"
    out.mkdir()
    with output_lock("--output-dir", out):  # another run holds the folder
        assert main(["--profile", "quick", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --output-dir='{out}' is in use by another pipeline run (pid {os.getpid()}")
    assert "\n" not in err and not (out / "01_echo.ipynb").exists() and not list(out.glob(".*"))
    assert main(["--profile", "quick", "--output-dir", str(out)]) == 0  # released: the next run goes ahead


def run_tiny(tmp_path, monkeypatch, name: str, body: str) -> tuple[int, object]:
    """Run one tiny notebook ``name`` with ``body`` through the pipeline into ``tmp_path/out``; (exit status, out)."""
    tiny_notebooks(tmp_path / "notebooks", {name: body})
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    out = tmp_path / "out"
    return main(["--profile", "quick", "--output-dir", str(out)]), out


def test_the_kernels_own_messages_go_to_a_log_not_the_terminal(tmp_path, monkeypatch, capfd):
    body = "import sys\nprint('kernel noise on fd 2', file=sys.__stderr__, flush=True)"
    status, out = run_tiny(tmp_path, monkeypatch, "01_noisy", body)
    assert status == 0
    seen = capfd.readouterr()
    assert "kernel noise" not in seen.err + seen.out and "Kernel is running over TCP" not in seen.err
    assert seen.out.splitlines()[0].startswith("running 01_noisy.ipynb")
    assert "kernel noise on fd 2" in (out / "logs" / "01_noisy.kernel.log").read_text()


def test_ctrl_c_is_one_line_naming_the_kernel_log(tmp_path, monkeypatch, capfd):
    import signal

    body = "import os, signal, time\nos.kill(os.getppid(), signal.SIGINT)  # Ctrl-C in the pipeline\ntime.sleep(60)"
    # Python's own Ctrl-C handler, as in a terminal: a job started in the background (`make test &`) inherits SIGINT
    # ignored, and Ctrl-C would then never arrive
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status, out = run_tiny(tmp_path, monkeypatch, "01_interrupted", body)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130
    err = capfd.readouterr().err.strip()
    assert err.startswith("error: interrupted; the notebook that was running and its figures were left as they were")
    assert "\n" not in err and "01_interrupted.kernel.log" in err
    assert not (out / "01_interrupted.ipynb").exists() and not list(out.glob(".*"))


@pytest.mark.parametrize("only", ["", ",", " , "])
def test_only_naming_no_notebook_is_one_line(only, capsys):
    assert main(["--profile", "quick", "--only", only]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --only={only!r} is not allowed; it names no notebook; use numbers from 01, 02")
    assert "\n" not in err


def test_an_output_folder_holding_committed_notebooks_is_one_line(tmp_path, capsys):
    import shutil
    import subprocess

    for folder in (paths.NOTEBOOKS_DIR, paths.NOTEBOOKS_DIR / "." / "", tmp_path / "clone" / "notebooks"):
        if folder.parent.name == "clone":
            folder.mkdir(parents=True)
            shutil.copy(paths.NOTEBOOKS_DIR / "02_four_models.ipynb", folder)
            subprocess.run(["git", "init", "-q", str(folder)], check=True)
            subprocess.run(["git", "-C", str(folder), "add", "02_four_models.ipynb"], check=True)
        before = {p: p.stat().st_mtime_ns for p in folder.glob("*.ipynb")}
        assert main(["--profile", "quick", "--only", "02", "--output-dir", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: --output-dir={str(folder)!r} is not allowed; it holds the committed notebooks")
        assert "\n" not in err and before == {p: p.stat().st_mtime_ns for p in folder.glob("*.ipynb")}
        assert not (folder / "figures").exists() and not (folder / "logs").exists()


def test_a_project_error_keeps_no_failed_notebook(tmp_path, monkeypatch, capsys):
    body = "from moe_utils.errors import MoeError\nraise MoeError('EPOCHS=0 is not allowed; it must be positive')"
    status, out = run_tiny(tmp_path, monkeypatch, "01_bad_parameter", body)
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.endswith("MoeError: EPOCHS=0 is not allowed; it must be positive"), err
    assert not list((out / "logs").glob("*.failed.ipynb"))  # the one line is the whole story


def test_a_long_notebook_prints_its_running_cell_and_elapsed_time(tmp_path, monkeypatch, capsys):
    from moe_utils import pipeline

    monkeypatch.setattr(pipeline, "HEARTBEAT_SECONDS", 0.5)
    status, out = run_tiny(tmp_path, monkeypatch, "01_slow", "import time\ntime.sleep(4)")  # papermill adds a cell
    lines = capsys.readouterr().out.splitlines()
    beats = [line for line in lines if line.startswith("  01_slow: ")]
    assert status == 0 and beats, lines
    assert any(line.startswith("  01_slow: cell 4 of 4, ") and line.endswith(" min") for line in beats), beats
