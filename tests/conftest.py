"""Shared fixtures: tiny image-folder archives and an isolated data/figures location."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
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


QUICK_DRIVER = """
import json, signal, sys
from pathlib import Path
from moe_utils import pipeline
from moe_utils.io import paths
paths.RUNS_DIR = Path(sys.argv[1])  # kernel logs and locks in the test's folder
signal.signal(signal.SIGTERM, pipeline.terminate_as_interrupt)  # as the command line: kernels and workers ended
Path(sys.argv[3]).write_text(json.dumps(pipeline.run_pipeline("quick", output_dir=Path(sys.argv[2]))))
"""


def stop_with_parent() -> None:
    """In a child, before it runs: SIGTERM when pytest dies, even by kill -9 (Linux), so the pipeline's handler
    ends its kernels and workers; elsewhere nothing."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture(scope="session", autouse=True)
def quick_run_started(request, tmp_path_factory):
    """When a collected test reads ``quick_run``: the pipeline's quick run of every notebook, started in its own
    process at the start of the session (so it overlaps the other tests), with the committed notebooks' and figures'
    digests taken before it; stopped (kernels and workers too) if the session ends first."""
    from moe_utils.pipeline import list_notebooks

    wanted = any("quick_run" in getattr(item, "fixturenames", ()) for item in request.session.items)
    if not wanted or (paths.mirror_dir() is None and not any(paths.PROCESSED_DIR.glob("images_*.pt"))):
        yield None
        return
    root = tmp_path_factory.mktemp("quick_run")
    committed = {p: digest(p) for p in list_notebooks()}
    figures = {p: digest(p) for p in paths.figures_dir().glob("*")} if paths.figures_dir().exists() else {}
    env = {k: v for k, v in os.environ.items() if k not in (paths.RETRAIN_ENV, paths.FIGURES_ENV)}
    env[paths.TRAINED_ENV] = str(root / "trained")
    log = (root / "pipeline.log").open("w")
    command = [sys.executable, "-c", QUICK_DRIVER, str(root / "runs"), str(root / "out"), str(root / "timings.json")]
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=stop_with_parent
    )
    yield SimpleNamespace(process=process, root=root, committed=committed, figures=figures)
    if process.poll() is None:  # the session ended first: the pipeline's own SIGTERM handler stops its kernels
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log.close()


@pytest.fixture(scope="session")
def quick_run(quick_run_started) -> SimpleNamespace:
    """Every notebook run once by the pipeline in the quick profile into a temporary folder, shared by the tests
    that read it (notebook 08 on the real SmolLM2 among them): ``out``, ``timings``, and the digests of the committed
    notebooks and figures taken before the run."""
    if quick_run_started is None:
        pytest.skip("no MNIST/CIFAR data: set MOE_DATA_MIRROR")
    started = quick_run_started
    if started.process.wait() != 0:
        tail = (started.root / "pipeline.log").read_text()[-3000:]
        pytest.fail(f"the quick pipeline failed (exit {started.process.returncode}):\n{tail}")
    timings = json.loads((started.root / "timings.json").read_text())
    return SimpleNamespace(
        out=started.root / "out", timings=timings, committed=started.committed, figures=started.figures
    )
