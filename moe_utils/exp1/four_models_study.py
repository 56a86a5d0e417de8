"""Notebook 02's study, settings -> run -> tables: source 004's four models trained once, accuracy and routing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from torch import nn

from ..datasets.mnist_cifar import load_mnist_cifar, random_share
from ..runtime import make_generator, resolve_device
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


def run(settings: FourModelsSettings) -> FourModelsTables:
    """Train the four models on the run's splits (a random share of each in the quick profile) and evaluate them."""
    device = resolve_device(settings.device)
    data = load_mnist_cifar(settings.data_source, dataset_names=settings.dataset_names, verbose=False)
    generator = make_generator(settings.seed)  # draws only in the quick profile: a random share of each split
    train = random_share(data.train, settings.size("train_share"), generator).flat(device)
    test = random_share(data.test, settings.size("test_share"), generator).flat(device)
    models = build_four_models(settings.init, seed=settings.seed, n_classes=data.n_classes)
    started = time.perf_counter()
    history = train_models(models, train, test, settings.train_config)
    seconds = time.perf_counter() - started
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
