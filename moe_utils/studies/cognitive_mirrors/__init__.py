"""Source 001 as its code does it: CogQA, the paper's probe, importance, elbow and ablation, with controls (notebook 10)."""

from . import plots
from .explore import explorer
from .report import findings, headline
from .run import run
from .settings import CognitiveMirrorsSettings as Settings
from .tables import CognitiveMirrorsTables as Tables

__all__ = ["Settings", "Tables", "explorer", "findings", "headline", "plots", "run"]
