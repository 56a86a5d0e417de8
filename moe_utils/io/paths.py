"""Every filesystem location the project uses, derived from the package location."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DATA_DIR = REPO_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
CACHE_ENV = "MOE_CACHE_DIR"  # where the data caches go (default data/processed), e.g. a test's temporary folder
PROCESSED_DIR = Path(os.environ[CACHE_ENV]).resolve() if os.environ.get(CACHE_ENV) else DATA_DIR / "processed"
BENCHMARK_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

FIGURES_ENV = "MOE_FIGURES_DIR"
MIRROR_ENV = "MOE_DATA_MIRROR"


def figures_dir() -> Path:
    """Folder that figures and their numbers go to (``$MOE_FIGURES_DIR`` or ``figures/``)."""
    override = os.environ.get(FIGURES_ENV)
    return Path(override).resolve() if override else REPO_ROOT / "figures"


def mirror_dir() -> Path | None:
    """Offline dataset mirror named by ``$MOE_DATA_MIRROR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None
