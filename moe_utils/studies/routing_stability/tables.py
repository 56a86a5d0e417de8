"""Notebook 04's tables: the sweep's curves, selection grid, fluctuation and trade-off, and the seed study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ...io.tables import Tables

if TYPE_CHECKING:
    from .settings import StabilitySettings


@dataclass
class StabilityTables(Tables):
    """Everything notebook 04 plots and reports."""

    FILES = {
        "curves": "04_jaccard_vs_sigma",
        "grid": "04_selection_grids",
        "fluctuation": "04_routing_fluctuation",
        "churn": "04_churn",
        "flips": "04_prediction_flips",
        "sigma_margins": "04_margins_by_sigma",
        "table": "04_stability_tradeoff",
        "band": "04_jaccard_seeds",
        "per_seed": "04_stability_seeds",
        "seed_table": "04_tradeoff_seeds",
        "margins": "04_paired_margins",
    }

    settings: StabilitySettings
    dataset_names: tuple[str, str]  # the two datasets as named in prose; tables use their slugs (``mnist``)
    info: dict  # runs, seconds, processes, training seconds
    curves: pd.DataFrame  # the sweep at seed SEED: run, layer, dataset, sigma, jaccard, changed, tokens
    table: pd.DataFrame  # the sweep's trade-off rows, one per run
    fluctuation: pd.DataFrame  # step, layer, changed, run
    fluctuation_summary: pd.DataFrame  # run -> first_check, second_half_mean
    grid: pd.DataFrame | None  # the source's picture (baseline, MoE layer 1), or None without a kept baseline
    band: pd.DataFrame  # mean ± std over seeds of the pooled curves, per run, noise placement and σ
    per_seed: pd.DataFrame  # one row per (seed-study run, seed)
    seed_table: pd.DataFrame  # per_seed summarised over seeds
    margins: pd.DataFrame  # paired-by-seed margins: a, b, value, mean, std, min, max, n, holds, below, t, t_low, t_high
    churn: pd.DataFrame  # every run: steps, churn over the last quarter and at the end, settled, collapsed, J, flips
    flips: pd.DataFrame  # every run and σ: predictions flipped and accuracy with noisy routers (clean experts)
    sigma_margins: pd.DataFrame  # the regulariser's paired gain in J at every evaluation σ

    @property
    def shown(self) -> list[str]:
        """Runs drawn in the curve figures: baseline, the smallest λ, noisy top-k and the balanced runs."""
        specs = self.settings.specs
        shown = [s.name for s in specs if s.name in ("baseline", "noisy top-k") or s.balance_alpha and s.lam]
        shown.insert(1, next(s.name for s in specs if s.lam and not s.balance_alpha))
        return shown
