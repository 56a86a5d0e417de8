"""Notebook 01's Findings and summary line, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

from ...datasets.mnist_cifar import DISPLAY_NAMES
from ...io.report import share
from .tables import DataSetupTables


def findings(t: DataSetupTables) -> str:
    """Notebook 01: the cache's counts and how differently the two datasets' pixels look."""
    first, second = t.data.dataset_names
    totals, mean = t.totals, t.stats.set_index(["split", "dataset"])
    per_class = (
        t.counts.assign(second=t.counts["class"] >= t.data.n_first)
        .groupby("second")[["train", "test"]]
        .agg(["min", "max"])
    )
    zero = {d: mean.loc[("train", d), "share of zero pixels"] for d in (first, second)}
    span = lambda flag: f"{per_class.loc[flag, ('train', 'min')]:,}–{per_class.loc[flag, ('train', 'max')]:,}"  # noqa: E731
    return (
        f"The cache holds {int(totals.loc['total'].sum()):,} images: {totals.loc['total', 'train']:,} train "
        f"({totals.loc[first, 'train']:,} {first} + {totals.loc[second, 'train']:,} {second}) and "
        f"{totals.loc['total', 'test']:,} test. Per class, {first} has {span(False)} train images and {second} "
        f"{span(True)}. Pixel statistics differ strongly: {share(zero[first])} of {first}'s training pixels are exactly 0 "
        f"against {share(zero[second], 1)} of {second}'s (mean {mean.loc[('train', first), 'mean']:.1f} vs "
        f'{mean.loc[("train", second), "mean"]:.1f} of 255), which makes "which dataset is this?" an easy question for '
        f"a learned gate in notebook 02. {t.data.describe()}."
    )


def headline(t: DataSetupTables) -> str:
    """One sentence for notebook 01's summary from its class counts (class, name, train, test)."""
    counts = t.counts
    datasets = [DISPLAY_NAMES.get(d, d) for d in dict.fromkeys(counts["name"].str.split(":").str[0])]
    return (
        f"{len(counts)} classes from {' and '.join(datasets)}, {int(counts.train.sum()):,} training and "
        f"{int(counts.test.sum()):,} test images, as one 32 × 32 grayscale uint8 tensor file"
    )
