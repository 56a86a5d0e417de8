"""Notebook 01's tables: images per class and split, per dataset, and pixel statistics."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ..datasets.mnist_cifar import load_mnist_cifar
from .settings import DataSetupSettings


@dataclass
class DataTables:
    """The combined dataset and its summaries."""

    data: object  # MnistCifar
    counts: pd.DataFrame  # class, name, train, test
    totals: pd.DataFrame  # rows: first dataset, second dataset, total; columns: train, test
    stats: pd.DataFrame  # split, dataset, images, mean, std, share of zero pixels


def class_counts(data) -> pd.DataFrame:
    """Images per class in each split."""
    n = len(data.class_names)
    return pd.DataFrame(
        {
            "class": range(n),
            "name": data.class_names,
            "train": torch.bincount(data.train.labels, minlength=n).tolist(),
            "test": torch.bincount(data.test.labels, minlength=n).tolist(),
        }
    )


def split_totals(data) -> pd.DataFrame:
    """Images of each dataset and in all, per split."""
    first, second = data.dataset_names
    return pd.DataFrame(
        {
            split: {first: int(s.is_mnist.sum()), second: int((~s.is_mnist).sum()), "total": len(s)}
            for split, s in (("train", data.train), ("test", data.test))
        }
    )


def pixel_stats(data) -> pd.DataFrame:
    """Mean, std and share of zero pixels (8-bit values) per split and dataset."""
    rows = []
    first, second = data.dataset_names
    for split_name, split in (("train", data.train), ("test", data.test)):
        for dataset, mask in ((first, split.is_mnist), (second, ~split.is_mnist)):
            pixels = split.images[mask].float()
            rows.append(
                {
                    "split": split_name,
                    "dataset": dataset,
                    "images": int(mask.sum()),
                    "mean": pixels.mean().item(),
                    "std": pixels.std().item(),
                    "share of zero pixels": (pixels == 0).float().mean().item(),
                }
            )
    return pd.DataFrame(rows)


def run(settings: DataSetupSettings) -> DataTables:
    """Load (or build) the cache and summarise it."""
    data = load_mnist_cifar(
        settings.data_source, rebuild=settings.rebuild_cache, dataset_names=settings.dataset_names, verbose=False
    )
    return DataTables(data, class_counts(data), split_totals(data), pixel_stats(data))
