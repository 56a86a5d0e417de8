"""Per-layer activation across training steps (source ``002``, notebook 07)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import LayerActivationSettings as Settings
from .tables import LayerActivationTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
