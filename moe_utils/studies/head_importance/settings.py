"""Notebook 06's parameters as one frozen, validated object: task data, the model, training, probes and ablations."""

from __future__ import annotations

from dataclasses import dataclass

from ...datasets.cognitive_tasks import check_seq_len
from ...errors import check_at_most, check_choice, check_divides, check_range
from ...moe.router import RouterConfig
from ...moe.transformer import FFNS, TransformerConfig
from ...settings import StudySettings


@dataclass(frozen=True)
class HeadImportanceSettings(StudySettings):
    """Attention-head importance per cognitive function (source ``001``), validated under the parameter names."""

    NOTEBOOK = "06_head_importance"

    QUICK_SIZES = {"n_train": 200, "n_held_out": 60, "steps": 150, "probe_steps": 50, "n_seeds": 2}
    POSITIVE = (
        "threads",
        "n_train",
        "n_held_out",
        "n_layers",
        "d_model",
        "steps",
        "batch_size",
        "probe_steps",
        "n_random",
        "n_seeds",
        "workers",
        "train_factor",
    )
    POSITIVE_FLOATS = ("lr",)

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
    seq_len: int = 14
    n_layers: int = 4
    n_heads: int = 8
    d_model: int = 32
    ffn: str = "dense"
    steps: int = 2500
    math_target: float = 0.6
    train_factor: int = 3
    batch_size: int = 64
    lr: float = 0.003
    probe_steps: int = 300
    top_heads: int = 4
    n_random: int = 5

    def __post_init__(self):
        self.check_common()
        check_seq_len(self.seq_len)
        check_range("MATH_TARGET", self.math_target, 0.0, 1.0)
        check_divides("N_HEADS", self.n_heads, "D_MODEL", self.d_model)
        check_choice("FFN", self.ffn, FFNS)
        check_at_most("TOP_HEADS", self.top_heads, "N_LAYERS × N_HEADS", self.n_layers * self.n_heads)

    @property
    def model(self) -> TransformerConfig:
        """The causal byte-level transformer trained on all eight families."""
        return TransformerConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            ffn=self.ffn,
            d_ff=4 * self.d_model,
            d_expert=self.d_model,
            router=RouterConfig(n_experts=8, top_k=2),
            causal=True,
            max_len=self.seq_len,
        )
