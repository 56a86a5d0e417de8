"""Notebook 10's tables: probe accuracy, importance maps, elbow counts, ablations with their margins, specificity, depth."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...io.tables import Tables


@dataclass
class CognitiveMirrorsTables(Tables):
    """Everything notebook 10 plots and reports; every DataFrame is saved beside its figure."""

    FILES = {
        "accuracy": "{prefix}_probe_accuracy",
        "importance": "{prefix}_importance",
        "elbow": "{prefix}_elbow",
        "ablation": "{prefix}_ablation",
        "margins": "{prefix}_margins",
        "specificity": "{prefix}_specificity",
        "depth": "{prefix}_depth",
        "heads": "{prefix}_masked_heads",
        "items": "{prefix}_items",
        "info": "{prefix}_info",
    }

    info: dict
    accuracy: pd.DataFrame  # classifier, accuracy, low, high, chance, n
    importance: pd.DataFrame  # method, function, layer, head, importance, share
    elbow: pd.DataFrame  # method, function, heads, share of heads
    ablation: pd.DataFrame  # function, condition, n, log-prob, exact match, their drops from the baseline
    margins: pd.DataFrame  # function, comparison, measure, margin, low, high, p, p (Holm), n
    specificity: pd.DataFrame  # function, own drop, other functions' drop, difference, low, high, p, p (Holm)
    depth: pd.DataFrame  # method, function, depth, low, high
    heads: pd.DataFrame  # function, condition, draw, layer, head: every masked head set
    items: pd.DataFrame  # condition, function, item, log-prob, exact match
    prefix: str = ""  # the file stems' prefix: 10_<model tag> (10_smollm2)
