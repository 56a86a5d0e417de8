"""Notebook 02's study, settings -> run -> tables: source 004's four models trained once, accuracy and routing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from torch import nn

from ..datasets.mnist_cifar import load_mnist_cifar, random_share
from ..io.trained import state_dicts
from ..runtime import make_generator, resolve_device, run_parallel
from .gating_stats import activation_rates
from .models import build_four_models
from .settings import FourModelsSettings
from .summary import claim_checks, final_accuracy, rates_beside_source
from .training import train_models


@dataclass
class FourModelsTables:
    """Everything notebook 02 plots and reports."""

    settings: FourModelsSettings
    data: object  # MnistCifar
    info: dict  # train / test images, seconds
    models: dict[str, nn.Module]
    history: pd.DataFrame  # model, epoch, split, accuracy, loss
    final: pd.DataFrame  # model, train, test
    rates: pd.DataFrame  # model, split, dataset, expert, rate
    compared: pd.DataFrame  # rates beside source 004's (ours, source_004, difference)
    claims: pd.DataFrame  # source 004's accuracy claims: left, right, margin, holds


@dataclass
class TrainedModels:
    """One training job's result, kept in data/trained/: the trained models, their history and training time."""

    models: dict[str, nn.Module]
    history: pd.DataFrame  # model, epoch, split, accuracy, loss
    seconds: float
    init: str = "tf"
    n_classes: int = 20

    @property
    def states(self) -> dict[str, dict]:
        """The models' state dicts by name."""
        return state_dicts(self.models)

    def kept_record(self) -> dict:
        """What is kept of it: the models as state dicts (``io.safe_store`` keeps no modules)."""
        fields = {"history": self.history, "seconds": self.seconds, "init": self.init, "n_classes": self.n_classes}
        return fields | {"states": self.states}

    @classmethod
    def from_kept_record(cls, record: dict) -> TrainedModels:
        """Rebuild it from ``kept_record()``: the four models built and their states loaded."""
        states = record.pop("states")
        return cls(four_models_from_states(states, record["init"], record["n_classes"]), **record)


def four_models_from_states(states: dict[str, dict], init: str, n_classes: int) -> dict[str, nn.Module]:
    """The four models with the kept ``states`` loaded."""
    models = build_four_models(init, seed=0, n_classes=n_classes)
    for name, model in models.items():
        model.load_state_dict(states[name])
    return models


@lru_cache(maxsize=1)
def run_splits(settings: FourModelsSettings) -> tuple:
    """(data, train, test): the run's splits on the device, a random share of each in the quick profile (SEED)."""
    device = resolve_device(settings.device)
    data = load_mnist_cifar(settings.data_source, dataset_names=settings.dataset_names, verbose=False)
    generator = make_generator(settings.seed)  # draws only in the quick profile: a random share of each split
    train = random_share(data.train, settings.size("train_share"), generator).flat(device)
    test = random_share(data.test, settings.size("test_share"), generator).flat(device)
    return data, train, test


def four_models_job(settings: FourModelsSettings, seed: int) -> TrainedModels:
    """The four models trained with ``seed`` (initialisation and batch order) on the run's splits."""
    _, train, test = run_splits(settings)
    models = build_four_models(settings.init, seed=seed, n_classes=train.n_classes)
    started = time.perf_counter()
    history = train_models(models, train, test, settings.train_config)
    return TrainedModels(models, history, time.perf_counter() - started, settings.init, train.n_classes)


def run(settings: FourModelsSettings) -> FourModelsTables:
    """Train the four models on the run's splits (a random share of each in the quick profile), or load them when
    they are kept in data/trained/ for these settings and code, and evaluate them."""
    data, train, test = run_splits(settings)
    device = resolve_device(settings.device)
    job = dict(settings=settings, seed=settings.seed)
    trained = run_parallel(
        four_models_job, [job], workers=1, desc="models", keep=settings.kept_runs(), executor=settings.executor_choice
    )[0]
    models = {name: model.to(device) for name, model in trained.models.items()}  # kept models load on the CPU
    history, seconds = trained.history, trained.seconds
    final = final_accuracy(history)
    rates = activation_rates(models, {"train": train, "test": test})
    info = {"train images": len(train), "test images": len(test), "device": str(device), "train seconds": seconds}
    return FourModelsTables(
        settings,
        data,
        info,
        models,
        history,
        final,
        rates,
        rates_beside_source(rates, source_data=data.is_source_data),
        claim_checks(final),
    )
