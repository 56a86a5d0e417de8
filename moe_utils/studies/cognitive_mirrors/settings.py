"""Notebook 10's parameters as one frozen, validated object: the model, CogQA's subsamples, the probe, the ablation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import MoeError, check_choice, check_positive
from ...hf.loading import DTYPES
from ...hf.pretrained import REAL_MODELS
from ...settings import StudySettings

PROBE, SHUFFLED = "probe", "shuffled-label probe"  # the paper's probe and its no-signal control
METHODS = (PROBE, SHUFFLED)
TOP, SHUFFLED_TOP, RANDOM, LAYER_RANDOM = "top", "shuffled top", "random", "random (layer-matched)"
CONDITIONS = (TOP, SHUFFLED_TOP, RANDOM, LAYER_RANDOM)  # head sets masked on a function's own items
MATH = "Math Calculation"


@dataclass(frozen=True)
class CognitiveMirrorsSettings(StudySettings):
    """Source ``001`` as its code does it, on CogQA and a real model, validated under the notebook's names."""

    NOTEBOOK = "10_cognitive_mirrors"

    QUICK_SIZES = {
        "per_function": 2,
        "eval_per_function": 2,
        "cross_per_function": 1,
        "epochs": 3,
        "n_random": 1,
        "n_boot": 50,
    }
    POSITIVE = (
        "per_function",
        "eval_per_function",
        "cross_per_function",
        "top_tokens",
        "epochs",
        "n_random",
        "n_layer_random",
        "n_boot",
        "batch_size",
    )

    model: str = "smollm2"
    dtype: str = "auto"
    seed: int = 0
    device: str = "auto"
    profile: str = "full"
    threads: int = 0
    cogqa: str = ""  # a folder with CogQA's two files; "" = $MOE_DATA_MIRROR/cogqa or the pinned download
    per_function: int = 30
    eval_per_function: int = 24
    cross_per_function: int = 6
    top_tokens: int = 5
    epochs: int = 100
    n_random: int = 2
    n_layer_random: int = 1
    n_boot: int = 1000
    batch_size: int = 8

    def __post_init__(self):
        if self.model not in REAL_MODELS and not (isinstance(self.model, str) and self.model.strip()):
            raise MoeError(
                f"MODEL={self.model!r} is not allowed; write {' | '.join(map(repr, REAL_MODELS))}, a Hugging Face "
                "hub id or a local folder"
            )
        check_choice("DTYPE", self.dtype, DTYPES)
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise MoeError(f"THREADS={self.threads!r} is not allowed; it must be 0 (all cores) or a positive integer")
        if not isinstance(self.cogqa, str) or (self.cogqa and not Path(self.cogqa).expanduser().is_dir()):
            raise MoeError(f'COGQA={self.cogqa!r} is not allowed; write "" or a folder holding CogQA\'s two files')
        self.check_common()
        check_positive("TOP_TOKENS", self.top_tokens)

    @property
    def tag(self) -> str:
        """The figure-name tag: the real model's key, else a slug of the model's name."""
        if self.model in REAL_MODELS:
            return self.model
        return "".join(c if c.isalnum() else "_" for c in Path(self.model).name.lower()).strip("_") or "model"

    @property
    def prefix(self) -> str:
        """The file stems' prefix: ``10_<tag>`` (``10_smollm2_ablation``)."""
        return f"10_{self.tag}"
