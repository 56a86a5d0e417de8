"""Notebook 02's job: source 004's four models trained with one seed on the run's splits (kept in data/trained/)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from torch import nn

from ...datasets.mnist_cifar import load_mnist_cifar, random_share
from ...exp1.models import build_four_models
from ...exp1.training import train_models
from ...io.trained import state_dicts
from ...runtime import make_generator, resolve_device
from .settings import FourModelsSettings


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
