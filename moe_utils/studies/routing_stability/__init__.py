"""Routing stability under input noise (source ``003``, notebook 04)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import StabilitySettings as Settings
from .tables import StabilityTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
