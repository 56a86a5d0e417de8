"""The data pipeline on tiny archives built by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_archive  # tests/conftest.py
from PIL import Image

from moe_utils.datasets import mnist_cifar as data_module
from moe_utils.datasets.image_archives import read_image_folder_archive, to_gray_square
from moe_utils.datasets.mnist_cifar import CIFAR_ARCHIVE, CIFAR_CLASSES, CLASS_NAMES, MNIST_ARCHIVE, load_mnist_cifar
from moe_utils.errors import MoeError
from moe_utils.io import paths


def test_tiny_mirror_builds_combined_dataset(tiny_mirror):
    data = load_mnist_cifar("mirror", verbose=False)
    assert data.train.images.shape == (10 * 3 + 10 * 2, 32, 32)
    assert data.test.images.shape == (10 * 2 + 10 * 1, 32, 32)
    assert data.train.images.dtype == torch.uint8
    assert data.train.labels.tolist() == sorted(data.train.labels.tolist())  # MNIST block then CIFAR block
    assert set(data.train.labels[data.train.is_first].tolist()) == set(range(10))
    assert set(data.train.labels[~data.train.is_first].tolist()) == set(range(10, 20))
    assert data.info["built"] and data.cache_path.exists()


def test_cache_is_reused_and_keyed_by_archive_content(tiny_mirror):
    first = load_mnist_cifar("mirror", verbose=False)
    second = load_mnist_cifar("mirror", verbose=False)
    assert not second.info["built"] and second.cache_path == first.cache_path
    assert torch.equal(first.train.images, second.train.images)
    (tiny_mirror / CIFAR_ARCHIVE).write_bytes(
        (tiny_mirror / CIFAR_ARCHIVE).read_bytes() + b""
    )  # same bytes -> same key
    assert load_mnist_cifar("mirror", verbose=False).cache_path == first.cache_path


def test_cifar_is_converted_with_itu_601_luma():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    gray = to_gray_square(Image.fromarray(rgb, "RGB"), 32)
    assert gray.shape == (32, 32)
    assert abs(int(gray[0, 0]) - round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)) <= 1


def test_mnist_is_resized_to_32(tiny_mirror):
    splits, classes = read_image_folder_archive(tiny_mirror / MNIST_ARCHIVE, 32)
    assert classes == [str(d) for d in range(10)]
    assert splits["train"].images.shape[1:] == (32, 32)
    names = splits["train"].names[:3]
    assert names == sorted(names, key=int)  # numeric order inside a class


def test_corrupt_archive_gives_one_line_error_and_no_cache(tiny_mirror):
    archive = tiny_mirror / CIFAR_ARCHIVE
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(MoeError) as err:
        load_mnist_cifar("mirror", verbose=False)
    assert "corrupt" in str(err.value) and CIFAR_ARCHIVE in str(err.value) and "\n" not in str(err.value)
    assert not list(paths.PROCESSED_DIR.glob("*")) if paths.PROCESSED_DIR.exists() else True


def test_mirror_without_archives_names_what_is_missing(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(paths.MIRROR_ENV, str(empty))
    with pytest.raises(MoeError, match=f"MOE_DATA_MIRROR=.*lacks {MNIST_ARCHIVE}, {CIFAR_ARCHIVE}"):
        load_mnist_cifar("auto", verbose=False)


def test_unknown_source_is_rejected():
    with pytest.raises(MoeError, match="DATA_SOURCE='web' is not allowed; choose one of 'auto', 'mirror', 'download'"):
        load_mnist_cifar("web", verbose=False)


def test_no_data_and_no_network_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.MIRROR_ENV, raising=False)
    monkeypatch.setattr(paths, "PROCESSED_DIR", tmp_path / "processed")
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path / "raw")

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error Name or service not known>")

    monkeypatch.setattr("torchvision.datasets.MNIST", offline)
    with pytest.raises(MoeError) as err:
        load_mnist_cifar("auto", verbose=False)
    message = str(err.value)
    assert "MOE_DATA_MIRROR" in message and "download" in message and "\n" not in message
    assert not (tmp_path / "processed").exists() or not list((tmp_path / "processed").iterdir())


def test_auto_uses_an_existing_cache_when_offline(tiny_mirror, monkeypatch):
    built = load_mnist_cifar("mirror", verbose=False)
    monkeypatch.delenv(paths.MIRROR_ENV)
    again = load_mnist_cifar("auto", verbose=False)
    assert again.cache_path == built.cache_path and again.source == "mirror" and not again.info["built"]


def test_swapped_archive_names_its_classes_and_is_not_the_seed_data(tiny_mirror):
    fashion = [
        "0_tshirt",
        "1_trouser",
        "2_pullover",
        "3_dress",
        "4_coat",
        "5_sandal",
        "6_shirt",
        "7_sneaker",
        "8_bag",
        "9_boot",
    ]
    write_tiny_archive(tiny_mirror / MNIST_ARCHIVE, fashion, 28, "L", "PNG", {"train": 2, "test": 1}, seed=5)
    data = load_mnist_cifar("mirror", verbose=False)
    assert data.class_names[:2] == ["mnist:tshirt", "mnist:trouser"] and data.class_names[10] == "cifar:airplane"
    assert not data.is_source_data and "004" not in data.describe() and MNIST_ARCHIVE in data.describe()
    named = load_mnist_cifar("mirror", verbose=False, dataset_names="Fashion-MNIST, CIFAR")
    assert named.dataset_names == ("Fashion-MNIST", "CIFAR") and named.class_names[0] == "fashion-mnist:tshirt"
    assert named.cache_path == data.cache_path  # names are display only: the same cache
    with pytest.raises(MoeError, match="DATASET_NAMES='Fashion' is not allowed"):
        load_mnist_cifar("mirror", verbose=False, dataset_names="Fashion")


def test_the_source_archives_are_recognised_by_checksum(tiny_mirror, monkeypatch):
    data = load_mnist_cifar("mirror", verbose=False)
    assert data.class_names == CLASS_NAMES and data.dataset_names == ("MNIST", "CIFAR")
    assert not data.is_source_data  # tiny random archives under the real file names are not source 004's data
    digests = {k: a["sha256"] for k, a in data.info["archives"].items()}
    monkeypatch.setattr(data_module, "KNOWN_ARCHIVES", digests)
    assert data.is_source_data and "source 004's MNIST + CIFAR-10" in data.describe()


def test_without_a_mirror_the_cache_is_chosen_by_identity_not_recency(tiny_mirror, tmp_path, monkeypatch):
    first = load_mnist_cifar("mirror", verbose=False)
    other = tmp_path / "other_mirror"
    other.mkdir()
    write_tiny_archive(
        other / MNIST_ARCHIVE, [str(d) for d in range(10)], 28, "L", "PNG", {"train": 2, "test": 1}, seed=9
    )
    write_tiny_archive(other / CIFAR_ARCHIVE, CIFAR_CLASSES, 32, "RGB", "JPEG", {"train": 2, "test": 1}, seed=8)
    monkeypatch.setenv(paths.MIRROR_ENV, str(other))
    second = load_mnist_cifar("mirror", verbose=False)  # the newer cache
    monkeypatch.delenv(paths.MIRROR_ENV)
    with pytest.raises(MoeError, match="2 data caches qualify") as err:
        load_mnist_cifar("auto", verbose=False)
    assert "\n" not in str(err.value)
    (other / MNIST_ARCHIVE).unlink()  # the newer cache's archives are gone: only the first still matches its data
    again = load_mnist_cifar("auto", verbose=False)
    assert again.cache_path == first.cache_path != second.cache_path


def test_a_temporary_left_by_a_killed_write_is_removed_at_the_next_load(tiny_mirror):
    processed = paths.PROCESSED_DIR
    processed.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = processed / f".mnist_cifar_mirror_x.pid{dead}.abcd1234.tmp.pt"
    stale.write_bytes(b"half a cache")
    live = processed / f".mnist_cifar_mirror_y.pid{os.getpid()}.abcd1234.tmp.pt"  # this process's own: kept
    live.write_bytes(b"in progress")
    load_mnist_cifar("mirror", verbose=False)
    assert not stale.exists() and live.exists()


def test_a_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    from torchvision import datasets

    from moe_utils.datasets import mnist_cifar

    raw = tmp_path / "data" / "raw"
    monkeypatch.setattr(paths, "RAW_DIR", raw)

    def offline(root, train=True, download=False):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)  # what torchvision creates before it fails
        (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(datasets, "MNIST", offline)
    with pytest.raises(MoeError, match="download failed"):
        mnist_cifar._build_from_download()
    assert not raw.exists()
    raw.mkdir(parents=True)
    (raw / "kept.txt").write_text("a user's file")
    with pytest.raises(MoeError):
        mnist_cifar._build_from_download()
    assert [p.name for p in raw.iterdir()] == ["kept.txt"]
