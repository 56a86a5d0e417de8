"""Shared fixtures: tiny image-folder archives and an isolated data/figures location."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from moe_utils.datasets.mnist_cifar import CIFAR_ARCHIVE, CIFAR_CLASSES, MNIST_ARCHIVE
from moe_utils.io import paths

MIRROR = paths.mirror_dir()


def _add(archive: tarfile.TarFile, name: str, image: Image.Image, fmt: str) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    info = tarfile.TarInfo(name)
    info.size = buffer.tell()
    buffer.seek(0)
    archive.addfile(info, buffer)


def write_tiny_archive(
    path: Path, classes: list[str], size: int, mode: str, fmt: str, per_class: dict[str, int], seed: int = 0
) -> None:
    """An image-folder tar.gz with ``per_class[split]`` random images per class."""
    rng = np.random.default_rng(seed)
    suffix = "png" if fmt == "PNG" else "jpg"
    with tarfile.open(path, "w:gz") as archive:
        for split, n in per_class.items():
            for label, cls in enumerate(classes):
                for k in range(n):
                    shape = (size, size) if mode == "L" else (size, size, 3)
                    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                    pixels.flat[0] = label * 10  # recognisable first pixel
                    _add(archive, f"{split}/{cls}/{k * 7 + label}.{suffix}", Image.fromarray(pixels, mode), fmt)


@pytest.fixture
def tiny_mirror(tmp_path, monkeypatch) -> Path:
    """A mirror folder with tiny MNIST-like and CIFAR-like archives; caches go to tmp_path."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_tiny_archive(mirror / MNIST_ARCHIVE, [str(d) for d in range(10)], 28, "L", "PNG", {"train": 3, "test": 2})
    write_tiny_archive(mirror / CIFAR_ARCHIVE, CIFAR_CLASSES, 32, "RGB", "JPEG", {"train": 2, "test": 1}, seed=1)
    monkeypatch.setenv(paths.MIRROR_ENV, str(mirror))
    monkeypatch.setattr(paths, "PROCESSED_DIR", tmp_path / "processed")
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path / "raw")
    return mirror


@pytest.fixture
def figures_tmp(tmp_path, monkeypatch) -> Path:
    """Send figures to a temporary folder."""
    folder = tmp_path / "figures"
    monkeypatch.setenv(paths.FIGURES_ENV, str(folder))
    return folder


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    """Kernel logs, locks and run folders of the tests go to a temporary ``runs/``, not the repository's."""
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setenv(paths.TRAINED_ENV, str(tmp_path / "trained"))  # kept models too, not data/trained/
    monkeypatch.delenv(paths.RETRAIN_ENV, raising=False)


def digest(path: Path) -> str:
    """A file's sha256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> SimpleNamespace:
    """Every notebook run once by the pipeline in the quick profile into a temporary folder, shared by the tests
    that read it (notebook 08 on the real SmolLM2 among them): ``out``, ``timings``, and the digests of the committed
    notebooks and figures taken before the run."""
    from moe_utils.pipeline import list_notebooks, run_pipeline

    if paths.mirror_dir() is None and not any(paths.PROCESSED_DIR.glob("images_*.pt")):
        pytest.skip("no MNIST/CIFAR data: set MOE_DATA_MIRROR")
    root = tmp_path_factory.mktemp("quick_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "RUNS_DIR", root / "runs")
        patch.setenv(paths.TRAINED_ENV, str(root / "trained"))
        patch.delenv(paths.RETRAIN_ENV, raising=False)
        patch.delenv(paths.FIGURES_ENV, raising=False)
        committed = {p: digest(p) for p in list_notebooks()}
        figures = {p: digest(p) for p in paths.figures_dir().glob("*")} if paths.figures_dir().exists() else {}
        timings = run_pipeline("quick", output_dir=root / "out")
    return SimpleNamespace(out=root / "out", timings=timings, committed=committed, figures=figures)
