"""Notebook 08's parameters as one frozen, validated object: the model, the task families, the analyses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import MoeError, check_choice, check_int, check_positive
from ...hf.loading import DTYPES
from ...hf.pretrained import REAL_MODELS
from ...runtime import PROFILES
from ...settings import StudySettings

QUICK_SIZES = {
    "per_family": 10,
    "n_random": 2,
    "n_boot": 100,
    "probe_steps": 30,
    "max_tokens": 512,
}  # caps of the quick profile (tests)
MASK, PROBE = "head-mask gradient", "probe gradient × activation"
SHUFFLED = "shuffled-label probe (control)"  # the probe trained on shuffled family labels: no family signal
METHODS = (MASK, PROBE, SHUFFLED)
TEMPLATE = "template probe (format control)"  # a probe of each prompt's template instead of its family
SHUFFLED_TEMPLATE = "shuffled-template probe (control)"  # the template probe on shuffled template labels
MATH = "Math Calculation"


@dataclass(frozen=True)
class RealModelSettings(StudySettings):
    """Notebook 08's parameters, validated on construction under the names the user typed."""

    NOTEBOOK = "08_real_models"

    model: str = "smollm2"
    dtype: str = "auto"
    revisions: str = ""
    seed: int = 0
    device: str = "auto"
    profile: str = "full"
    per_family: int = 150
    top_share: float = 0.05
    n_random: int = 10
    n_boot: int = 1000
    probe_steps: int = 300
    threads: int = 0
    batch_size: int = 32
    max_tokens: int = 4096
    sigmas: tuple = (0.05, 0.1, 0.2, 0.5, 1.0)

    QUICK_SIZES = QUICK_SIZES

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise MoeError(
                f"MODEL={self.model!r} is not allowed; write {' | '.join(map(repr, REAL_MODELS))}, "
                "a Hugging Face hub id or a local folder (comma-separated folders: checkpoints)"
            )
        check_choice("DTYPE", self.dtype, DTYPES)
        if not isinstance(self.revisions, str):
            raise MoeError(f'REVISIONS={self.revisions!r} is not allowed; write "" or comma-separated hub revisions')
        check_int("SEED", self.seed)
        check_choice("DEVICE", self.device, ("auto", "cpu", "cuda"))
        check_choice("PROFILE", self.profile, PROFILES)
        for name in ("per_family", "n_random", "n_boot", "probe_steps", "batch_size", "max_tokens"):
            check_positive(name.upper(), getattr(self, name))
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise MoeError(f"THREADS={self.threads!r} is not allowed; it must be 0 (all cores) or a positive integer")
        sigmas = self.sigmas
        if (
            not isinstance(sigmas, (tuple, list))
            or not sigmas
            or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s >= 0 for s in sigmas
            )
        ):
            raise MoeError(
                f"SIGMAS={sigmas!r} is not allowed; write a tuple of non-negative numbers, e.g. (0.1, 0.5, 1.0)"
            )
        share = self.top_share
        if (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or not math.isfinite(share)
            or not 0 < share < 1
        ):
            raise MoeError(f"TOP_SHARE={share!r} is not allowed; it must be a number strictly between 0 and 1")
        names = self.checkpoint_names
        if self.revisions and len(names) > 1:
            raise MoeError("REVISIONS is not allowed with several folders in MODEL; give one or the other")
        if self.revisions and (names[0] in REAL_MODELS or Path(names[0]).expanduser().is_dir()):
            raise MoeError(
                f"REVISIONS={self.revisions!r} is not allowed with MODEL={self.model!r}, a local model: "
                "revisions are hub revisions; give checkpoints as comma-separated folders in MODEL instead"
            )

    @property
    def checkpoint_names(self) -> list[str]:
        """MODEL split at commas (one name unless several checkpoint folders are given)."""
        return [m.strip() for m in self.model.split(",") if m.strip()]

    @property
    def tag(self) -> str:
        """The figure-name tag: the real model's key, else a slug of the model's name."""
        name = self.checkpoint_names[0]
        if name in REAL_MODELS:
            return name
        slug = "".join(c if c.isalnum() else "_" for c in Path(name).name.lower()).strip("_")
        return slug or "model"

    @property
    def prefix(self) -> str:
        """The file stems' prefix of this model's tables and figures: ``08_<tag>`` (``08_smollm2_accuracy``)."""
        return f"08_{self.tag}"
