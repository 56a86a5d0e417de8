"""Sources 000, 003 and 002 on SmolLM2 upcycled into an MoE (notebook 09)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import UpcycledSettings as Settings
from .tables import UpcycledTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
