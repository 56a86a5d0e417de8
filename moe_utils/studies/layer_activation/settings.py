"""Notebook 07's parameters as one frozen, validated object: task data, the 12-layer model and its checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...datasets.cognitive_tasks import check_seq_len
from ...errors import MoeError, check_divides
from ...io import paths
from ...moe.transformer import TransformerConfig
from ...settings import StudySettings


@dataclass(frozen=True)
class LayerActivationSettings(StudySettings):
    """Per-layer activation across training (source ``002``), validated under the notebook's parameter names."""

    NOTEBOOK = "07_layer_activation"

    QUICK_SIZES = {"n_train": 100, "n_held_out": 20, "steps": 32, "n_seeds": 2}
    POSITIVE = (
        "threads",
        "n_train",
        "n_held_out",
        "eval_per_task",
        "n_layers",
        "d_model",
        "steps",
        "n_checkpoints",
        "batch_size",
        "n_seeds",
        "workers",
    )
    POSITIVE_FLOATS = ("lr", "share_clip")

    seed: int = 0
    n_seeds: int = 6
    workers: int = 2
    executor: str = "auto"
    retrain: bool = False  # train again even when kept (io.trained)
    device: str = "auto"
    profile: str = "full"
    threads: int = 1
    n_train: int = 1500
    n_held_out: int = 300
    eval_per_task: int = 64
    seq_len: int = 14
    n_layers: int = 12
    n_heads: int = 12
    d_model: int = 48
    steps: int = 4000
    n_checkpoints: int = 16
    share_clip: float = 0.008
    batch_size: int = 32
    lr: float = 0.002

    def __post_init__(self):
        self.check_common()
        check_seq_len(self.seq_len)
        check_divides("N_HEADS", self.n_heads, "D_MODEL", self.d_model)
        steps = self.size("steps")
        if steps % self.n_checkpoints:
            raise MoeError(
                f"N_CHECKPOINTS={self.n_checkpoints!r} is not allowed; it must divide the number of steps "
                f"({steps} in profile {self.profile!r})"
            )

    @property
    def model(self) -> TransformerConfig:
        """The causal dense transformer whose layers are followed through training."""
        return TransformerConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            ffn="dense",
            d_ff=4 * self.d_model,
            causal=True,
            max_len=self.seq_len,
        )

    @property
    def checkpoint_dir(self) -> Path:
        """Where the seeds' checkpoints go (the first seed's are kept)."""
        return paths.PROCESSED_DIR / f"07_checkpoints_{self.profile}"
