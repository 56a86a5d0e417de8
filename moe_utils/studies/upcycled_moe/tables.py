"""Notebook 09's tables: losses, expert load per domain, specialisation over seeds and documents, noise, profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...io.tables import Tables

if TYPE_CHECKING:
    from .settings import UpcycledSettings


@dataclass
class UpcycledTables(Tables):
    """Everything notebook 09 plots and reports."""

    FILES = {
        "corpus": "09_corpus",
        "parameters": "09_parameters",
        "losses": "09_loss_by_domain",
        "expert_load": "09_expert_load",
        "expert_load_init": "09_expert_load_init",
        "per_seed": "09_specialisation_seeds",
        "margins": "09_paired_margins",
        "bootstrap": "09_document_bootstrap",
        "document_counts": "09_document_counts",
        "noise": "09_noise_per_seed",
        "noise_summary": "09_noise",
        "history": "09_training",
        "profile": "09_layer_profile",
        "profile_trends": "09_layer_trends",
        "checkpoints": "09_checkpoint_check",
        "info": "09_run",
    }

    settings: UpcycledSettings
    corpus: pd.DataFrame  # per domain: held-out and train documents and tokens
    parameters: pd.DataFrame  # model, total and active parameters
    losses: pd.DataFrame  # method, seed, stage (init | trained), domain, held-out loss, predicted tokens
    expert_load: pd.DataFrame  # method, seed, stage, domain, layer, expert, tokens_routed, n_tokens, relative_load
    per_seed: pd.DataFrame  # method, seed, stage: specialisation, held-out MaxVio, mean held-out loss
    margins: pd.DataFrame  # paired by seed: aux_free − aux_loss, trained − init
    bootstrap: pd.DataFrame  # two-stage (seeds, documents) and documents-only intervals, trained models
    document_counts: dict[str, np.ndarray]  # "<stage>:<domain>" -> [documents, methods, seeds, layers, experts]
    noise: pd.DataFrame  # method, seed, stage, layer, sigma: jaccard, changed, kl, top-1 flips (free, pinned)
    noise_summary: pd.DataFrame  # mean and std over seeds per method, stage, layer, sigma
    history: pd.DataFrame  # method, seed, step: lr, loss, aux_loss, loss per domain, MaxVio per layer
    profile: pd.DataFrame  # method, seed, step, layer: relative residual update, feed-forward output, loss
    profile_trends: pd.DataFrame  # method, layer, quantity: Spearman ρ with the step over seeds
    checkpoints: pd.DataFrame  # per saved checkpoint: notebook 08's routing path against the notebook's counts
    info: dict  # seconds, models, tokens, threads, load average
    expert_load_init: pd.DataFrame | None = None  # the first seed's load before training (the heatmap's numbers)
