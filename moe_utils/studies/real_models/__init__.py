"""The source analyses on a real pretrained language model (notebook 08)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import RealModelSettings as Settings
from .tables import RealModelTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
