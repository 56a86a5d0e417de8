"""Relative expert load per domain and layer (source ``000``, notebook 05)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import ExpertLoadSettings as Settings
from .tables import ExpertLoadTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
