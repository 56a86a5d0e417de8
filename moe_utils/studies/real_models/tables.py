"""Notebook 08's tables: head importance per function, the layer profile, and an MoE model's routing."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from ...io.tables import Tables


@dataclass
class RealModelTables(Tables):
    """Everything notebook 08 plots and reports; every DataFrame is saved beside its figure."""

    FILES = {
        "accuracy": "{prefix}_accuracy",
        "mask_importance": "{prefix}_importance_maskgrad",
        "probe_importance": "{prefix}_importance_probe",
        "control_importance": "{prefix}_importance_shuffled",
        "ablation": "{prefix}_ablation",
        "items": "{prefix}_ablation_items",
        "cross": "{prefix}_cross_ablation",
        "specificity": "{prefix}_specificity",
        "family_specificity": "{prefix}_family_specificity",
        "templates": "{prefix}_template_overlap",
        "overlap": "{prefix}_top_head_overlap",
        "similarity": "{prefix}_similarity",
        "math": "{prefix}_math_vs_others",
        "layers": "{prefix}_layer_profile",
        "info": "{prefix}_info",
    }

    info: dict
    accuracy: pd.DataFrame  # family, n, accuracy, chance, low, high, learned
    shares: dict[str, torch.Tensor]  # method -> [families, L, H]
    importance: pd.DataFrame  # method, family, layer, head, share
    ablation: pd.DataFrame  # method, family, top drop, random drop, margin, low, high
    cross: pd.DataFrame  # method, masked, measured, drop
    specificity: pd.DataFrame  # method, diagonal, off-diagonal, difference, low, high, families
    overlap: pd.DataFrame  # method, family a, family b, shared heads
    similarity: pd.DataFrame  # method, family a, family b, cosine
    math: pd.DataFrame  # method, math cos vs others, others among themselves, depths
    layers: pd.DataFrame  # checkpoint, layer, share, raw grad, relative residual update
    items: pd.DataFrame = field(default_factory=pd.DataFrame)  # per evaluation item and condition: correct
    family_specificity: pd.DataFrame = field(default_factory=pd.DataFrame)  # method, family, own − others, interval
    templates: pd.DataFrame = field(default_factory=pd.DataFrame)  # probe, family, within − across Jaccard, interval
    prefix: str = ""  # the file stems' prefix: 08_<model tag> (08_smollm2)


@dataclass
class RoutingTables(Tables):
    """Notebooks 04's and 05's measures on an MoE model: Jaccard vs σ per layer, relative load, MaxVio."""

    FILES = {
        "stability": "{prefix}_jaccard_vs_sigma",
        "expert_load": "{prefix}_expert_load",
        "maxvio": "{prefix}_maxvio",
    }

    stability: pd.DataFrame
    expert_load: pd.DataFrame
    maxvio: pd.DataFrame
    prefix: str = ""  # as RealModelTables'
