"""Attention-head importance per cognitive function (source ``001``, notebook 06)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import HeadImportanceSettings as Settings
from .tables import HeadImportanceTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
