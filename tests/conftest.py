"""Shared fixtures: tiny image-folder archives and an isolated data/figures location."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

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
