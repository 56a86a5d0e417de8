"""Every filesystem location the project uses, derived from the package location."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DATA_DIR = REPO_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
CACHE_ENV = "MOE_CACHE_DIR"  # where the data caches go (default data/processed), e.g. a test's temporary folder
PROCESSED_DIR = Path(os.environ[CACHE_ENV]).resolve() if os.environ.get(CACHE_ENV) else DATA_DIR / "processed"
BENCHMARK_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
RUNS_DIR = REPO_ROOT / "runs"  # git-ignored: runs that are not the committed configuration, and kernel logs

FIGURES_ENV = "MOE_FIGURES_DIR"
MIRROR_ENV = "MOE_DATA_MIRROR"
TRAINED_ENV = "MOE_TRAINED_DIR"  # where trained models are kept (default data/trained), e.g. a test's folder
RETRAIN_ENV = "MOE_RETRAIN"  # "1": train again whatever is kept; the papermill pipeline sets it unless --reuse


_run_folder: Path | None = None  # set by a notebook whose settings differ from the committed run's


def set_run_folder(folder: Path | None) -> None:
    """Send this process's figures to ``folder`` (a run folder under ``runs/``), or back to ``figures/`` with None."""
    global _run_folder
    _run_folder = folder


def figures_dir() -> Path:
    """Folder that figures and their numbers go to: ``$MOE_FIGURES_DIR`` (the pipeline's staging folder), else this
    process's run folder (a notebook run with other settings than the committed ones), else ``figures/``."""
    override = os.environ.get(FIGURES_ENV)
    if override:
        return Path(override).resolve()
    return _run_folder if _run_folder is not None else REPO_ROOT / "figures"


def mirror_dir() -> Path | None:
    """Offline dataset mirror named by ``$MOE_DATA_MIRROR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


@contextlib.contextmanager
def env_set(name: str, value: str):
    """``$name`` set to ``value`` meanwhile, restored (or removed) afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
