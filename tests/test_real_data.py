"""The real MNIST + CIFAR-10 setup, when the offline mirror is available."""

from __future__ import annotations

import pytest
import torch

from moe_utils.datasets.mnist_cifar import load_mnist_cifar
from moe_utils.io import paths

pytestmark = pytest.mark.skipif(paths.mirror_dir() is None, reason="MOE_DATA_MIRROR is not set")

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_data_has_official_splits_and_class_counts():
    data = load_mnist_cifar("mirror", verbose=False)
    assert len(data.train) == 110_000 and len(data.test) == 20_000
    assert data.train.images.shape[1:] == (32, 32)
    assert torch.bincount(data.train.labels, minlength=20).tolist() == MNIST_TRAIN + [5000] * 10
    assert torch.bincount(data.test.labels, minlength=20).tolist() == MNIST_TEST + [1000] * 10
    assert int(data.train.is_first.sum()) == 60_000 and int(data.test.is_first.sum()) == 10_000
    assert bool((data.train.labels[data.train.is_first] < 10).all())
