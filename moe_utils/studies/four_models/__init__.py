"""Notebook 02: source 004's Experiment 1, four gated models trained once on MNIST + CIFAR-10."""

from . import plots
from .report import findings, headline
from .run import run
from .settings import FourModelsSettings as Settings
from .tables import FourModelsTables as Tables

__all__ = ["Settings", "Tables", "findings", "headline", "plots", "run"]
