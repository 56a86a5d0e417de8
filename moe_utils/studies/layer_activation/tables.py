"""Notebook 07's tables: accuracy per checkpoint, plateaus, per-layer measures and their trends over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ...io.tables import Tables

if TYPE_CHECKING:
    from .job import SeedTables
    from .settings import LayerActivationSettings


@dataclass
class LayerActivationTables(Tables):
    """Everything notebook 07 plots and reports."""

    FILES = {
        "progress": "07_checkpoint_accuracy",
        "plateaus": "07_plateau",
        "first_layers": "07_layer_activation",
        "seed_mean": "07_layer_activation_seeds",
        "trends": "07_trend_seeds",
        "rank_trends": "07_rank_trends_seeds",
        "rank_summary": "07_rank_trends",
    }

    settings: LayerActivationSettings
    info: dict  # seeds, seconds, processes, training seconds per seed, held-out prompts, kept checkpoints
    first: SeedTables  # the first seed (its checkpoints kept)
    progress: pd.DataFrame  # every seed's accuracy per checkpoint
    plateaus: pd.DataFrame  # seed, final and best accuracy, gain over the last quarter, threshold, plateaued
    per_layer: pd.DataFrame  # every seed's per-layer measures per checkpoint
    seed_mean: pd.DataFrame  # per_layer averaged over seeds, per step and layer
    trends: pd.DataFrame  # per seed and quantity: layers rising, early and late layers' first and last values
    rank_trends: pd.DataFrame  # per seed, layer and quantity: Spearman ρ with the step over every checkpoint
    rank_summary: pd.DataFrame  # per quantity and layer: ρ mean, std, seeds with ρ > 0.5 and < −0.5
