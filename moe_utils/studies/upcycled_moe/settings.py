"""Notebook 09's parameters as one frozen, validated object: the dense model, its upcycling, training and measures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import MoeError, check_at_most, check_divides, check_range
from ...hf.pretrained import REAL_MODELS
from ...io.trained import trained_dir
from ...settings import StudySettings

METHODS = ("aux_loss", "aux_free")  # the two balancing methods compared (DeepSeek-V3 §2.1.2)
DENSE = "dense"  # the control: the dense model's same feed-forward layers trained on the same batches
METHOD_LABELS = {"aux_loss": "Aux-Loss-Based", "aux_free": "Aux-Loss-Free", DENSE: "dense (same layers trained)"}


@dataclass(frozen=True)
class UpcycledSettings(StudySettings):
    """Source ``000``, ``003`` and ``002`` on a pretrained model upcycled into an MoE, under the notebook's names."""

    NOTEBOOK = "09_upcycled_moe"

    QUICK_SIZES = {
        "steps": 8,
        "n_seeds": 2,
        "train_windows": 16,
        "held_out_windows": 2,
        "noise_windows": 1,
        "n_boot": 50,
    }
    POSITIVE = (
        "n_seeds",
        "workers",
        "threads",
        "n_experts",
        "top_k",
        "moe_layers",
        "steps",
        "per_domain",
        "seq_len",
        "train_windows",
        "held_out_windows",
        "noise_windows",
        "n_checkpoints",
        "n_boot",
    )
    POSITIVE_FLOATS = ("lr", "router_std")
    NONNEGATIVE = ("alpha", "gamma", "warmup_steps")

    model: str = "smollm2"
    seed: int = 0
    n_seeds: int = 3
    workers: int = 1
    executor: str = "auto"
    retrain: bool = False  # train again even when kept (io.trained)
    device: str = "auto"
    profile: str = "full"
    threads: int = 2
    n_experts: int = 8
    top_k: int = 2
    moe_layers: int = 4
    reinit_share: float = 0.1
    router_std: float = 0.02
    alpha: float = 0.01
    gamma: float = 0.01
    steps: int = 100
    warmup_steps: int = 10
    per_domain: int = 2
    seq_len: int = 128
    lr: float = 0.0003
    train_windows: int = 200
    held_out_windows: int = 16
    noise_windows: int = 2
    sigmas: tuple = (0.05, 0.1, 0.2, 0.5, 1.0)
    n_checkpoints: int = 10
    n_boot: int = 1000

    def __post_init__(self):
        if not isinstance(self.model, str) or not (self.model in REAL_MODELS or Path(self.model).expanduser().is_dir()):
            raise MoeError(
                f"MODEL={self.model!r} is not allowed; write 'smollm2' or the folder of a Llama-family Hugging Face model"
            )
        self.check_common()
        check_at_most("TOP_K", self.top_k, "N_EXPERTS", self.n_experts)
        check_range("REINIT_SHARE", self.reinit_share, 0.0, 1.0)
        check_divides("N_CHECKPOINTS", self.size("n_checkpoints"), "STEPS", self.size("steps"))
        check_at_most("WARMUP_STEPS", self.warmup_steps, "STEPS - 1", self.steps - 1)
        needed = self.size("steps") * self.per_domain
        if self.size("train_windows") < needed:
            raise MoeError(
                f"TRAIN_WINDOWS={self.train_windows!r} is not allowed; it must be at least STEPS × PER_DOMAIN = {needed} "
                f"(each window is seen at most once; profile {self.profile!r})"
            )
        sigmas = self.sigmas
        if (
            not isinstance(sigmas, (tuple, list))
            or not sigmas
            or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in sigmas
            )
        ):
            raise MoeError(f"SIGMAS={sigmas!r} is not allowed; write a tuple of positive numbers, e.g. (0.1, 0.5, 1.0)")

    @property
    def sizes(self) -> dict:
        """The profile's sizes; in the quick profile every checkpoint count divides its steps."""
        sizes = super().sizes
        sizes["n_checkpoints"] = self.n_checkpoints
        if self.profile == "quick":  # the quick profile's few steps: the largest count that divides them
            sizes["n_checkpoints"] = math.gcd(sizes["steps"], min(self.n_checkpoints, sizes["steps"]))
        return sizes

    @property
    def runs(self) -> list[tuple[str, int]]:
        """(method, seed) of every trained model: each method at every seed, the dense control at SEED."""
        runs = [(m, s) for s in self.seeds for m in METHODS]
        return runs + [(DENSE, self.seed)]

    @property
    def rate(self) -> dict[str, float]:
        """Each method's balancing rate: α of the sequence-wise loss, γ of the bias update (0 for the other)."""
        return {"aux_loss": self.alpha, "aux_free": self.gamma, DENSE: 0.0}

    @property
    def checkpoint_dir(self) -> Path:
        """Where the first seed's models are saved as Hugging Face checkpoints (``from_pretrained``), beside the kept runs."""
        return trained_dir() / self.NOTEBOOK / f"checkpoints_{self.profile}"
