"""Notebook 03's tables: each of its six studies' tables by name, the runs behind them and the seconds each took."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ...io.tables import Tables

if TYPE_CHECKING:
    from ...exp1.seed_study import SeedRuns
    from .job import Splits
    from .settings import GateAnalysisSettings


@dataclass
class GateAnalysisTables(Tables):
    """Everything notebook 03 plots and reports."""

    FILES = {
        "hist": "03_gate_weight_hist",
        "summaries": "03_gate_weight_summary",
        "class_rates": "03_class_routing",
        "all_class_rates": "03_class_routing_seeds",
        "sweep_table": "03_expert_sweep",
        "sweep_class_rates": "03_sweep_class_routing",
        "strategy_table": "03_gate_strategies",
        "bands": "03_accuracy_bands",
        "finals": "03_final_accuracy_seeds",
        "rates": "03_activation_rates_seeds",
        "claims": "03_claims_seeds",
        "hard_summary": "03_hard_split_summary",
        "hard_numbers": "03_hard_split",
    }

    settings: GateAnalysisSettings
    splits: Splits  # the run's data: full train, test, the studies' share of train
    runs: SeedRuns  # study 5's models, histories and rates per seed
    timings: dict  # study -> seconds
    # study 1: gate weights
    hist: pd.DataFrame  # the first seed's G(X)_1 histograms
    summaries: pd.DataFrame  # per-input weight summaries, every seed
    summary_stats: pd.DataFrame  # their mean and std over seeds
    # study 2: class routing
    class_rates: pd.DataFrame  # per-class expert rates, first seed
    all_class_rates: pd.DataFrame  # every seed
    classes_left_out: list  # classes without a test image in this run
    # study 3: expert sweep
    sweep_final: pd.DataFrame
    sweep_routing: pd.DataFrame
    sweep_class_rates: pd.DataFrame
    sweep_table: pd.DataFrame
    # study 4: gate strategies
    strategy_table: pd.DataFrame
    # study 5: seeds
    bands: pd.DataFrame  # accuracy per epoch, mean ± std over seeds
    finals: pd.DataFrame  # final accuracy per seed
    final_stats: pd.DataFrame
    rates: pd.DataFrame  # activation rates per seed
    rate_stats: pd.DataFrame  # their mean and std beside source 004's
    claims: pd.DataFrame  # source 004's claims over seeds
    # study 6: how hard the split is
    seed_kinds: pd.DataFrame
    hard_summary: pd.DataFrame
    by_epoch: pd.DataFrame
    final_majority: pd.DataFrame
    hard_numbers: pd.DataFrame
