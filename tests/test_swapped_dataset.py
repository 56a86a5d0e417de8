"""Another pair of image datasets in the mirror layout runs notebooks 01–04 end to end, named by the mirror's choice."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import _add
from PIL import Image

from moe_utils.datasets import mnist_cifar as data_module
from moe_utils.datasets.mnist_cifar import DATASETS_ENV, MANIFEST, load_mnist_cifar
from moe_utils.errors import MoeError
from moe_utils.io import paths
from moe_utils.pipeline import run_pipeline

SHAPES = ["0_ring", "1_bar", "2_dot"]  # 3 classes, 24 × 24 grayscale PNG
# 12 classes, 40 × 40 RGB PNG, numeric prefixes that sort as numbers (10_ after 9_), unequal class counts
TILE_NAMES = ["blobs", "checks", "noise", "stripes", "waves", "dots", "grid", "rings", "fog", "plus", "cross", "wedge"]
TILES = [f"{i}_{name}" for i, name in enumerate(TILE_NAMES, 1)]
TILE_TRAIN = [20 + 3 * i for i in range(12)]  # 20-53 training images per class
TILE_TEST = [2, 1, 1, 1, 3, 1, 1, 2, 1, 1, 2, 1]  # a small test split: 17 images, 1-3 per class
# What must not appear in a swapped run's outputs: source 004's dataset names, its label, and its published numbers.
SOURCE_004 = re.compile(r"mnist|cifar|(?<![\d.])004(?!\d)|0\.63 / 0\.37|0\.01 / 0\.99|1\.00 and 0\.99", re.IGNORECASE)


def write_archive(path, classes, size, mode, per_split, seed):
    """An image-folder archive whose classes differ in mean brightness (so a model can learn them); ``per_split``
    gives each split's images per class (one count, or one per class)."""
    import tarfile

    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as archive:
        for split, counts in per_split.items():
            counts = counts if isinstance(counts, list) else [counts] * len(classes)
            for label, (cls, n) in enumerate(zip(classes, counts)):
                for k in range(n):
                    shape = (size, size) if mode == "L" else (size, size, 3)
                    level = 40 + 180 * label / max(len(classes) - 1, 1)
                    pixels = np.clip(rng.normal(level, 30, shape), 0, 255).astype(np.uint8)
                    _add(archive, f"{split}/{cls}/{k}.png", Image.fromarray(pixels, mode), "PNG")


@pytest.fixture
def swapped_mirror(tmp_path, monkeypatch):
    """A mirror holding two non-MNIST/CIFAR archives, chosen by MOE_DATASETS; caches in tmp_path."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_archive(mirror / "shapes-png.tar.gz", SHAPES, 24, "L", {"train": 120, "test": 40}, seed=1)
    write_archive(mirror / "tiles-png.tar.gz", TILES, 40, "RGB", {"train": TILE_TRAIN, "test": TILE_TEST}, seed=2)
    monkeypatch.setenv(paths.MIRROR_ENV, str(mirror))
    monkeypatch.setenv(DATASETS_ENV, "shapes-png.tar.gz,tiles-png.tar.gz")
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "processed"))
    monkeypatch.setattr(paths, "PROCESSED_DIR", tmp_path / "processed")
    return mirror


def test_the_mirror_names_its_archives_and_any_class_counts_work(swapped_mirror, monkeypatch):
    data = load_mnist_cifar("mirror", verbose=False)
    assert data.dataset_names == ("shapes", "tiles") and data.n_classes == 15 and data.n_first == 3
    assert data.class_names[:3] == ["shapes:ring", "shapes:bar", "shapes:dot"]
    assert data.class_names[3:] == [f"tiles:{name}" for name in TILE_NAMES]  # 10_plus after 9_fog: numeric order
    assert len(data.train) == 3 * 120 + sum(TILE_TRAIN) and int(data.train.is_first.sum()) == 360
    assert len(data.test) == 3 * 40 + sum(TILE_TEST)
    counts = data.train.labels[~data.train.is_first].bincount().tolist()[3:]
    assert counts == TILE_TRAIN  # each class's images under its own label
    assert data.train.labels[data.train.is_first].max() == 2 and data.train.labels[~data.train.is_first].min() == 3
    assert data.train.n_classes == 15 and data.train.subset(data.train.labels[:5]).dataset_names == ("shapes", "tiles")
    assert not data.is_source_data and not SOURCE_004.search(data.describe())
    monkeypatch.delenv(DATASETS_ENV)  # the manifest in the mirror names them instead
    (swapped_mirror / MANIFEST).write_text("# first, second\ntiles-png.tar.gz, shapes-png.tar.gz\n")
    flipped = load_mnist_cifar("mirror", verbose=False)
    assert flipped.dataset_names == ("tiles", "shapes") and flipped.n_first == 12


@pytest.mark.parametrize(
    "value, expected",
    [
        ("only-one.tar.gz", "MOE_DATASETS='only-one.tar.gz' is not allowed; name two different archive files"),
        ("a.tar.gz,a.tar.gz", "MOE_DATASETS='a.tar.gz,a.tar.gz' is not allowed"),
        ("shapes-png.tar.gz,missing.tar.gz", "lacks missing.tar.gz (archives chosen by MOE_DATASETS="),
    ],
)
def test_a_bad_choice_of_archives_is_one_line(swapped_mirror, monkeypatch, value, expected):
    monkeypatch.setenv(DATASETS_ENV, value)
    with pytest.raises(MoeError) as err:
        load_mnist_cifar("mirror", verbose=False)
    assert expected in str(err.value) and "\n" not in str(err.value)
    if "lacks" in expected:
        assert "shapes-png.tar.gz, tiles-png.tar.gz" in str(err.value)  # what the mirror does hold


def test_a_class_without_test_images_is_one_line(swapped_mirror):
    write_archive(swapped_mirror / "tiles-png.tar.gz", TILES, 40, "RGB", {"train": 5}, seed=2)
    with pytest.raises(MoeError, match="has no 'test/' folder"):
        load_mnist_cifar("mirror", verbose=False)


def test_a_truncated_cache_is_set_aside_and_rebuilt(swapped_mirror, capsys):
    built = load_mnist_cifar("mirror", verbose=False)
    cache = built.cache_path
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # an interrupted copy, a full disk
    again = load_mnist_cifar("mirror", verbose=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "is damaged" in out[0] and "truncated" in out[0] and cache.name in out[0]
    assert again.info["built"] and torch_equal(again.train.images, built.train.images)
    assert (cache.parent / f"{cache.name}.damaged").exists()


def test_a_cache_with_flipped_bytes_but_the_same_size_is_detected(swapped_mirror, capsys):
    cache = load_mnist_cifar("mirror", verbose=False).cache_path
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache.write_bytes(bytes(raw))
    assert load_mnist_cifar("mirror", verbose=False).info["built"]
    assert "does not match its recorded sha256" in capsys.readouterr().out


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_notebooks_01_to_04_run_end_to_end_on_the_swapped_data(swapped_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    out = tmp_path / "run"
    timings = run_pipeline("quick", only="01,02,03,04", output_dir=out)
    assert list(timings) == [
        "01_data_setup.ipynb",
        "02_four_models.ipynb",
        "03_gate_analysis.ipynb",
        "04_routing_stability.ipynb",
    ]
    for name in timings:
        executed = json.loads((out / name).read_text())
        outputs = json.dumps([c.get("outputs", []) for c in executed["cells"]])
        outputs = re.sub(r'"image/png": "[^"]*"|base64,[A-Za-z0-9+/=]+', "", outputs)  # the pixels, not the words
        found = [outputs[max(m.start() - 100, 0) : m.end() + 60] for m in SOURCE_004.finditer(outputs)]
        assert not found, f"{name}: {found[:5]}"
        assert "shapes" in outputs and "tiles" in outputs, name
    for table in (out / "figures").glob("*.csv"):
        text = table.read_text()
        assert not SOURCE_004.search(text), (table.name, SOURCE_004.search(text))
    counts = (out / "figures" / "01_class_counts.csv").read_text()
    assert "shapes:ring" in counts and "tiles:noise" in counts and "tiles:wedge" in counts
    assert "acc_shapes" in (out / "figures" / "04_stability_tradeoff.csv").read_text()
    assert data_module.KNOWN_ARCHIVES  # the source's archives are still known by checksum


def test_an_undecodable_image_names_its_archive_member(swapped_mirror):
    import io
    import tarfile

    with tarfile.open(swapped_mirror / "tiles-png.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("train/1_blobs/0.png")
        info.size = 12
        archive.addfile(info, io.BytesIO(b"not an image"))
    with pytest.raises(MoeError) as err:
        load_mnist_cifar("mirror", verbose=False)
    assert "image train/1_blobs/0.png cannot be decoded" in str(err.value) and "BytesIO" not in str(err.value)
