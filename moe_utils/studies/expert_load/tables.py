"""Notebook 05's tables: relative expert load, losses, MaxVio, specialisation over seeds and documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...io.tables import Tables

if TYPE_CHECKING:
    from ...datasets.corpora import DomainCorpus
    from .job import ModelTables
    from .settings import ExpertLoadSettings


@dataclass
class ExpertLoadTables(Tables):
    """Everything notebook 05 plots and reports."""

    FILES = {
        "corpus_record": "05_corpus",
        "shapes": "05_shapes",
        "losses": "05_loss_by_domain",
        "expert_load": "05_expert_load",
        "fine_load": "05_expert_load_fine",
        "maxvio": "05_maxvio",
        "specialisation": "05_specialisation",
        "per_seed": "05_specialisation_seeds",
        "bootstrap": "05_document_bootstrap",
        "margins": "05_paired_margins",
        "document_counts": "05_document_counts",
        "grid": "05_alpha_gamma_grid",
    }

    settings: ExpertLoadSettings
    corpus: DomainCorpus
    info: dict  # models, seconds, processes, training seconds
    first: dict[tuple[str, str], ModelTables]  # (shape, method) -> the first seed's model tables
    expert_load: pd.DataFrame  # standard shape, first seed: LOAD_COLUMNS
    fine_load: pd.DataFrame | None  # fine-grained shape, first seed (None without one)
    losses: pd.DataFrame  # method, domain, held_out_tokens, held_out_loss, bits_per_byte, train_loss_last100
    maxvio: pd.DataFrame  # method, kind, step, layer, maxvio (training batches and held-out global)
    maxvio_summary: pd.DataFrame  # method -> first / last 100 training steps, held-out
    specialisation: pd.DataFrame  # first seed, standard shape: per method, overall and per layer
    per_seed: pd.DataFrame  # one row per (config, method, seed)
    bootstrap: pd.DataFrame  # two-stage (seeds, documents) and documents-only intervals per config, statistic, method
    margins: pd.DataFrame  # paired-by-seed aux_free − aux_loss per config and value
    document_counts: dict[str, np.ndarray]  # "<config>:<domain>" -> [documents, methods, seeds, layers, experts]
    shapes: pd.DataFrame  # per shape: experts, width, top-k, shared experts, active and total parameters
    grid: pd.DataFrame  # SEED's models: aux_loss at α against aux_free at γ, α, γ ∈ {PAPER_RATES, ALPHA/GAMMA}
