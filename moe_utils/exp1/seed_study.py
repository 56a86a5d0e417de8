"""Experiment 1 repeated over seeds: one seed's four models (a job for runtime.run_parallel), the seeds' tables with
experts aligned, and source 004's claims checked seed by seed."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from torch import nn

from ..datasets.mnist_cifar import Split
from ..io.trained import state_dicts
from .gating_stats import activation_rates, align_experts
from .models import build_four_models
from .routing_probe import RoutingProbe
from .summary import claim_checks, final_accuracy
from .training import TrainConfig, train_models


@dataclass
class SeedRun:
    """Notebook 02's four models trained with one seed, routing recorded per epoch."""

    seed: int
    history: pd.DataFrame  # model, epoch, split, accuracy, loss, seed
    rates: pd.DataFrame  # model, split, dataset, expert, rate, seed (experts not yet aligned)
    routing_by_epoch: pd.DataFrame  # model, epoch, dataset, expert, rate, seed
    models: dict[str, nn.Module]
    init: str = "tf"
    n_classes: int = 20

    def kept_record(self) -> dict:
        """What is kept of it: the models as state dicts (``io.safe_store`` keeps no modules)."""
        fields = {f: getattr(self, f) for f in ("seed", "history", "rates", "routing_by_epoch", "init", "n_classes")}
        return fields | {"states": state_dicts(self.models)}

    @classmethod
    def from_kept_record(cls, record: dict) -> SeedRun:
        """Rebuild it from ``kept_record()``: the four models built and their states loaded."""
        states = record.pop("states")
        models = build_four_models(record["init"], seed=0, n_classes=record["n_classes"])
        for name, model in models.items():
            model.load_state_dict(states[name])
        return cls(models=models, **record)


@dataclass
class SeedRuns:
    """Notebook 02's experiment repeated over seeds."""

    history: pd.DataFrame  # model, epoch, split, accuracy, loss, seed
    rates: (
        pd.DataFrame
    )  # model, split, dataset, expert, rate, seed; expert 1 = larger share of the first dataset (train)
    routing_by_epoch: pd.DataFrame  # model, epoch, dataset, expert, rate, seed: mean G(X) over each epoch's batches
    models: dict[int, dict[str, nn.Module]]  # seed -> the four trained models


def train_four_models(train: Split, test: Split, config: TrainConfig, *, seed: int, init: str = "tf") -> SeedRun:
    """Notebook 02's four models with ``seed`` (initialisation and batch order), routing recorded per epoch."""
    models = build_four_models(init, seed=seed, n_classes=train.n_classes)
    config = replace(config, seed=seed)
    probe = RoutingProbe(len(train), config.batch_size, train.dataset_names)
    history = train_models(models, train, test, config, extra_loss=probe, progress=False)
    rates = activation_rates(models, {"train": train, "test": test})
    return SeedRun(
        seed,
        history.assign(seed=seed),
        rates.assign(seed=seed),
        probe.rates().assign(seed=seed),
        models,
        init,
        train.n_classes,
    )


def combine_seed_runs(runs: list[SeedRun]) -> SeedRuns:
    """The seeds' tables concatenated, experts aligned per model and seed (expert 1: larger share of dataset 1)."""
    return SeedRuns(
        pd.concat([r.history for r in runs], ignore_index=True),
        align_experts(pd.concat([r.rates for r in runs], ignore_index=True)),
        pd.concat([r.routing_by_epoch for r in runs], ignore_index=True),
        {r.seed: r.models for r in runs},
    )


def final_accuracy_per_seed(history: pd.DataFrame) -> pd.DataFrame:
    """Final train/test accuracy per seed and model."""
    return pd.concat(
        [final_accuracy(h).assign(seed=s) for s, h in history.groupby("seed", sort=False)], ignore_index=True
    )


def claims_across_seeds(finals: pd.DataFrame) -> pd.DataFrame:
    """Source 004's accuracy claims per seed, and how often / by how much they hold."""
    per_seed = pd.concat(
        [claim_checks(f).assign(seed=s) for s, f in finals.groupby("seed", sort=False)], ignore_index=True
    )
    summary = per_seed.groupby("claim (test accuracy)", sort=False).agg(
        holds_in=("holds", "sum"),
        seeds=("holds", "size"),
        margin_mean=("margin", "mean"),
        margin_std=("margin", "std"),
        margin_min=("margin", "min"),
        margin_max=("margin", "max"),
    )
    return summary.reset_index()
