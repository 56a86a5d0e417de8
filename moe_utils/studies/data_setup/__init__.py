"""Notebook 01: source 004's data, MNIST + CIFAR-10 as one 20-class, 32 × 32 grayscale dataset, cached once."""

from . import plots
from .report import findings, headline
from .run import run
from .settings import DataSetupSettings as Settings
from .tables import DataSetupTables as Tables

__all__ = ["Settings", "Tables", "findings", "headline", "plots", "run"]
