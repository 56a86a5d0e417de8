"""Notebook 02's tables: accuracy per epoch, final accuracy, activation rates beside source 004's, its claims."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from torch import nn

from ...io.tables import Tables
from .settings import FourModelsSettings


@dataclass
class FourModelsTables(Tables):
    """Everything notebook 02 plots and reports."""

    FILES = {
        "history": "02_accuracy_curves",
        "final": "02_final_accuracy",
        "compared": "02_activation_rates",
    }

    settings: FourModelsSettings
    data: object  # MnistCifar
    info: dict  # train / test images, seconds
    models: dict[str, nn.Module]
    history: pd.DataFrame  # model, epoch, split, accuracy, loss
    final: pd.DataFrame  # model, train, test
    rates: pd.DataFrame  # model, split, dataset, expert, rate
    compared: pd.DataFrame  # rates beside source 004's (ours, source_004, difference)
    claims: pd.DataFrame  # source 004's accuracy claims: left, right, margin, holds
