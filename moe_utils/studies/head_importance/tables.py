"""Notebook 06's tables: accuracy, importance maps, similarity, Math check, ablations and controls over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ...io.tables import Tables
from .job import MASK, PROBE

if TYPE_CHECKING:
    from .job import SeedTables
    from .settings import HeadImportanceSettings

MAIN_METHODS = (PROBE, MASK)  # the two importance methods drawn; CONTROL is the probe's control


@dataclass
class HeadImportanceTables(Tables):
    """Everything notebook 06 plots and reports."""

    FILES = {
        "families": "06_task_families",
        "accuracy": "06_accuracy",
        "probe_importance": "06_head_importance",
        "mask_importance": "06_head_importance_maskgrad",
        "similarity_table": "06_task_similarity",
        "math": "06_math_vs_others",
        "depths": "06_depth_centroid",
        "ablation": "06_ablation",
        "mean_cross": "06_cross_ablation",
        "cross": "06_cross_ablation_seeds",
        "specificity": "06_specificity",
        "specificity_margins": "06_specificity_margins",
        "overlap": "06_top_head_overlap",
        "seed_table": "06_seeds",
        "ablation_seeds": "06_ablation_tasks_seeds",
        "ablation_by_seed": "06_ablation_seeds",
        "ablation_margins": "06_ablation_margins",
        "family_margins": "06_ablation_family_margins",
    }

    settings: HeadImportanceSettings
    info: dict  # seeds, seconds, processes
    families: pd.DataFrame  # the task families of seed SEED
    first: SeedTables  # the first seed's study (its model kept)
    accuracy: pd.DataFrame  # task -> held-out / train accuracy, chance, majority, above chance
    importance: pd.DataFrame  # method, task, layer, head, share (the first seed)
    similarity: dict  # method -> [tasks, tasks] cosine similarity of the maps
    similarity_table: pd.DataFrame  # task, <task>…, method
    math: pd.DataFrame  # the first seed's Math check
    depths: pd.DataFrame  # task -> depth centroid per method
    ablation: pd.DataFrame  # the first seed's ablation
    seed_table: pd.DataFrame  # one row per seed: probes, accuracy, control correlation, Math check
    ablation_seeds: pd.DataFrame  # every seed's ablation (task, condition, drop, seed)
    ablation_by_seed: pd.DataFrame  # seed, condition, drop (mean over the 8 tasks)
    ablation_margins: pd.DataFrame  # each ranking against random and layer-matched random heads, paired by seed
    cross: pd.DataFrame  # every seed's cross-task ablation: method, masked, measured, drop, seed
    specificity: pd.DataFrame  # seed, method, diagonal, off-diagonal, diagonal − off-diagonal
    specificity_margins: pd.DataFrame  # per method: diagonal against off-diagonal, paired by seed
    overlap: pd.DataFrame  # method, task a, task b, shared top heads (mean and std over seeds)
    family_margins: pd.DataFrame = None  # method, learned task: top − layer-matched random drop over seeds, Holm

    @property
    def shares(self) -> dict:
        """The first seed's two importance maps [tasks, layers, heads] (probe, head mask)."""
        return {m: self.first.shares[m] for m in MAIN_METHODS}
