"""Experiment 1 repeated over seeds: histories, aligned activation rates, mean ± std and the seed's claims per seed."""
from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from torch import nn

from ..datasets.mnist_cifar import Split
from .gating_stats import activation_rates, align_experts
from .models import build_four_models
from .routing_probe import RoutingProbe
from .summary import claim_checks, final_accuracy
from .training import TrainConfig, train_models


@dataclass
class SeedRuns:
    """Notebook 02's experiment repeated over seeds."""

    history: pd.DataFrame  # model, epoch, split, accuracy, loss, seed
    rates: pd.DataFrame  # model, split, dataset, expert, rate, seed; expert 1 = larger MNIST share (train)
    routing_by_epoch: pd.DataFrame  # model, epoch, dataset, expert, rate, seed: mean G(X) over each epoch's training batches
    models: dict[int, dict[str, nn.Module]]  # seed -> the four trained models


def run_seeds(train: Split, test: Split, config: TrainConfig, seeds: list[int], init: str = "tf", progress: bool = False) -> SeedRuns:
    """Notebook 02's four models once per seed (the seed sets initialisation and batch order), routing recorded per epoch."""
    histories, rates, by_epoch, models = [], [], [], {}
    for seed in seeds:
        models[seed] = build_four_models(init, seed=seed)
        probe = RoutingProbe(len(train), config.batch_size)
        history = train_models(models[seed], train, test, replace(config, seed=seed), extra_loss=probe, progress=progress)
        histories.append(history.assign(seed=seed))
        rates.append(activation_rates(models[seed], {"train": train, "test": test}).assign(seed=seed))
        by_epoch.append(probe.rates().assign(seed=seed))
    return SeedRuns(
        pd.concat(histories, ignore_index=True), align_experts(pd.concat(rates, ignore_index=True)), pd.concat(by_epoch, ignore_index=True), models
    )


def mean_std(table: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1), min, max and count of ``value`` over seeds, per ``keys``."""
    grouped = table.groupby(keys, sort=False)[value]
    return grouped.agg(["mean", "std", "min", "max", "count"]).reset_index()


def final_accuracy_per_seed(history: pd.DataFrame) -> pd.DataFrame:
    """Final train/test accuracy per seed and model."""
    return pd.concat([final_accuracy(h).assign(seed=s) for s, h in history.groupby("seed", sort=False)], ignore_index=True)


def claims_across_seeds(finals: pd.DataFrame) -> pd.DataFrame:
    """The seed document's accuracy claims per seed, and how often / by how much they hold."""
    per_seed = pd.concat([claim_checks(f).assign(seed=s) for s, f in finals.groupby("seed", sort=False)], ignore_index=True)
    summary = per_seed.groupby("claim (test accuracy)", sort=False).agg(
        holds_in=("holds", "sum"), seeds=("holds", "size"), margin_mean=("margin", "mean"),
        margin_std=("margin", "std"), margin_min=("margin", "min"), margin_max=("margin", "max"),
    )
    return summary.reset_index()
