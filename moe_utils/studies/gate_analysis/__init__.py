"""Notebook 03: source 004's Discussion over seeds: gate weights, class routing, more experts, gate strategies, and
how hard the split is under other training settings."""

from . import plots
from .report import findings, headline
from .run import run
from .settings import GateAnalysisSettings as Settings
from .tables import GateAnalysisTables as Tables

__all__ = ["Settings", "Tables", "findings", "headline", "plots", "run"]
