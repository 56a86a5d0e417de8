"""Notebook 01's tables: images per class and split, split totals, pixel statistics (and the figures' numbers)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...io.tables import Tables
from .settings import DataSetupSettings


@dataclass
class DataSetupTables(Tables):
    """The combined dataset and its summaries."""

    FILES = {
        "counts": "01_class_counts",
        "stats": "01_pixel_stats",
        "pixel_histogram": "01_pixel_histogram",  # a figure's numbers: share of pixels per bin and dataset
        "samples": "01_samples",  # a figure's numbers: which test image of each class is shown
    }

    settings: DataSetupSettings
    data: object  # MnistCifar
    counts: pd.DataFrame  # class, name, train, test
    totals: pd.DataFrame  # rows: first dataset, second dataset, total; columns: train, test
    stats: pd.DataFrame  # split, dataset, images, mean, std, share of zero pixels
