"""Where jobs run: local processes, a Dask LocalCluster and submitit's local executor give the same tables; a failed
job is one line naming its seed while the others are kept; a bad or missing engine is one line before any work."""

from __future__ import annotations

import builtins
import dataclasses

import pandas as pd
import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.executors import parse_executor
from moe_utils.io import paths, trained
from moe_utils.runtime import run_parallel

FAILING = "on"  # a test clears it to remove the failure's cause


def seeded_job(settings, seed: int, fail: int = -1) -> trained.KeptTables:
    """A tiny seeded fit; raises for seed ``fail`` while FAILING is set."""
    if seed == fail and FAILING:
        raise ValueError(f"no data for seed {seed}")
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 4, generator=generator), torch.randn(64, 1, generator=generator)
    weights = torch.linalg.lstsq(x, y).solution.flatten().tolist()
    return trained.KeptTables({"weights": weights, "threads": torch.get_num_threads()}, {})


@pytest.mark.parametrize(
    "text, message",
    [
        ("threads", "EXECUTOR='threads' is not allowed; use 'processes', 'dask:local'"),
        ("dask:", "EXECUTOR='dask:' is not allowed"),
        ("slurm", "EXECUTOR='slurm' is not allowed"),
    ],
)
def test_an_unknown_executor_is_one_line_before_any_work(text, message, monkeypatch):
    calls = []
    monkeypatch.setattr(trained.KeptRuns, "load", lambda *a: calls.append(a))
    with pytest.raises(MoeError) as error:
        run_parallel(seeded_job, [dict(settings={}, seed=0)], executor=text)
    assert str(error.value).startswith(message) and "\n" not in str(error.value) and not calls
    monkeypatch.setenv("MOE_EXECUTOR", text)  # the environment's choice is checked the same way
    with pytest.raises(MoeError, match="is not allowed"):
        run_parallel(seeded_job, [dict(settings={}, seed=0)])


def test_an_engine_that_is_not_installed_names_its_extra(monkeypatch):
    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name.startswith("submitit"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    with pytest.raises(
        MoeError, match=r"^EXECUTOR='slurm:gpu' needs the \[slurm\] extra: pip install -e '\.\[slurm\]'$"
    ):
        parse_executor("slurm:gpu")
    assert parse_executor(None).engine == "processes"  # the default needs nothing


ENGINES = ["processes", "dask:local", "slurm:local"]


@pytest.fixture
def importable_tests(monkeypatch):
    """This test module importable in submitit's worker processes (pytest puts tests/ on sys.path only here)."""
    import os
    from pathlib import Path

    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p))


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_every_engine_gives_the_processes_results_on_one_thread(engine, importable_tests):
    pytest.importorskip("dask.distributed" if engine.startswith("dask") else "submitit")
    jobs = [dict(settings={}, seed=s) for s in range(3)]
    local = run_parallel(seeded_job, jobs, workers=2, executor="processes")
    other = run_parallel(seeded_job, jobs, workers=2, executor=engine)
    assert [r.tables for r in other] == [r.tables for r in local]
    assert all(r.tables["threads"] == 1 for r in other)


def test_a_remote_traceback_gives_its_exception_line():
    from moe_utils.executors import remote_last_line

    remote = (
        "Job failed with trace:\n---\nTraceback (most recent call last):\n  File x\nValueError: no data\n---\n  - a.err"
    )
    assert remote_last_line(remote) == "ValueError: no data" and remote_last_line("plain") == "plain"


@pytest.mark.parametrize("engine", ["slurm:local", "dask:local"])
def test_a_remote_failure_names_the_seed_and_the_remote_error(engine, importable_tests):
    pytest.importorskip("dask.distributed" if engine.startswith("dask") else "submitit")
    jobs = [dict(settings={}, seed=s, fail=1) for s in range(2)]
    with pytest.raises(MoeError) as error:
        run_parallel(seeded_job, jobs, workers=2, executor=engine)
    assert str(error.value).startswith("1 of 2 job(s) failed: seed 1") and "ValueError: no data for seed 1" in str(
        error.value
    )


def test_a_failed_job_is_one_line_with_its_seed_and_the_others_are_kept(tmp_path, monkeypatch):
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    monkeypatch.setenv(paths.TRAINED_ENV, str(tmp_path))
    settings = StabilitySettings()
    jobs = [dict(settings=settings, seed=s, fail=1) for s in range(3)]
    keep = trained.KeptRuns("99_toy", settings, log=lambda *_: None)
    with pytest.raises(MoeError) as error:
        run_parallel(seeded_job, jobs, workers=2, keep=keep)
    text = str(error.value)
    assert text.startswith("1 of 3 job(s) failed (the others' results are kept): seed 1, settings key ")
    assert text.endswith("ValueError: no data for seed 1") and "\n" not in text and keep.trained == 2
    monkeypatch.setattr(__import__(__name__), "FAILING", None)
    again = trained.KeptRuns("99_toy", settings, log=lambda *_: None)
    results = run_parallel(seeded_job, jobs, workers=1, keep=again)  # the same jobs, the cause removed
    assert len(again.loaded) == 2 and again.trained == 1 and len(results) == 3  # only the failed seed ran again


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quick_study_gives_the_same_tables_on_every_engine(engine, tmp_path, monkeypatch, importable_tests):
    pytest.importorskip("dask.distributed" if engine.startswith("dask") else "submitit")
    from moe_utils.studies.head_importance import Settings, run

    monkeypatch.setenv(paths.TRAINED_ENV, str(tmp_path / "trained"))
    monkeypatch.setenv("MOE_EXECUTOR", "nowhere")  # the EXECUTOR parameter wins over the environment
    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path / "figures"))
    settings = dataclasses.replace(Settings(profile="quick", executor=engine), n_seeds=2, steps=60, n_random=2)
    tables = run(settings)
    tables.save()
    reference = REFERENCE.setdefault("tables", {})
    saved = {p.name: pd.read_csv(p) for p in sorted((tmp_path / "figures").glob("*.csv"))}
    if not reference:
        reference.update(saved)
    for name, frame in saved.items():
        columns = [c for c in frame.columns if "second" not in c]  # timing columns aside
        pd.testing.assert_frame_equal(frame[columns], reference[name][columns], check_exact=True, obj=name)


REFERENCE: dict = {}  # the first engine's tables, which the others must equal
