"""Notebook 01's run: load (or build) the cache, check its layout, count images per class and summarise pixels."""

from __future__ import annotations

import pandas as pd
import torch

from ...datasets.mnist_cifar import load_mnist_cifar
from ...errors import MoeError
from .settings import DataSetupSettings
from .tables import DataSetupTables


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
            split: {first: int(s.is_first.sum()), second: int((~s.is_first).sum()), "total": len(s)}
            for split, s in (("train", data.train), ("test", data.test))
        }
    )


def pixel_stats(data) -> pd.DataFrame:
    """Mean, std and share of zero pixels (8-bit values) per split and dataset."""
    rows = []
    first, second = data.dataset_names
    for split_name, split in (("train", data.train), ("test", data.test)):
        for dataset, mask in ((first, split.is_first), (second, ~split.is_first)):
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


SOURCE_TOTALS = {"train": 110_000, "test": 20_000}  # MNIST 60,000 / 10,000 + CIFAR-10 50,000 / 10,000


def check_counts(data, counts: pd.DataFrame, totals: pd.DataFrame) -> None:
    """The layout, whatever the data: every class has train and test images; the source's archives have its sizes."""
    empty = counts[(counts["train"] == 0) | (counts["test"] == 0)]
    if len(empty):
        raise MoeError(f"classes without train or test images: {', '.join(empty['name'])} ({data.describe()})")
    found = {split: int(totals.loc["total", split]) for split in SOURCE_TOTALS}
    if data.is_source_data and found != SOURCE_TOTALS:
        raise MoeError(f"source 004's archives should give {SOURCE_TOTALS} images, the cache holds {found}")


def run(settings: DataSetupSettings) -> DataSetupTables:
    """Load (or build) the cache, check its layout and summarise it."""
    data = load_mnist_cifar(
        settings.data_source, rebuild=settings.rebuild_cache, dataset_names=settings.dataset_names, verbose=False
    )
    counts, totals = class_counts(data), split_totals(data)
    check_counts(data, counts, totals)
    return DataSetupTables(settings, data, counts, totals, pixel_stats(data))
