"""Notebook 05's parameters as one frozen, validated object: the corpus, the two configurations and training."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import check_at_most, check_int
from ...moe.transformer import TransformerConfig
from ...settings import StudySettings
from .method import METHODS, lm_config

PAPER_SHAPE = "standard, papers' α, γ"  # the standard shape at Wang et al. 2024's α = γ = 0.001
FINE_PAPER_SHAPE = "fine-grained, papers' α, γ"  # the fine-grained shape at those rates, first seed only (α × γ grid)


@dataclass(frozen=True)
class ExpertLoadSettings(StudySettings):
    """Expert load by domain (source ``000``), validated under the notebook's parameter names."""

    NOTEBOOK = "05_expert_load"

    QUICK_SIZES = {
        "tokens_per_domain": 20000,
        "held_out_tokens_per_domain": 4000,
        "steps": 30,
        "n_seeds": 2,
        "paper_rates_seeds": 2,
        "n_boot": 100,
    }
    POSITIVE = (
        "tokens_per_domain",
        "held_out_tokens_per_domain",
        "steps",
        "seqs_per_domain",
        "seq_len",
        "n_layers",
        "n_experts",
        "cpu_threads",
        "n_seeds",
        "paper_rates_seeds",
        "workers",
        "held_out_doc_bytes",
        "n_boot",
        "fine_top_k",
        "fine_d_expert",
        "fine_n_shared",
    )
    POSITIVE_FLOATS = ("lr",)
    NONNEGATIVE = ("alpha", "gamma", "paper_rates")

    seed: int = 0
    n_seeds: int = 10
    paper_rates_seeds: int = 5
    workers: int = 2
    executor: str = "auto"
    retrain: bool = False  # train again even when kept (io.trained)
    device: str = "auto"
    profile: str = "full"
    tokens_per_domain: int = 400000
    held_out_tokens_per_domain: int = 40000
    held_out_doc_bytes: int = 1500
    n_boot: int = 1000
    steps: int = 1000
    seqs_per_domain: int = 4
    seq_len: int = 128
    lr: float = 0.003
    n_layers: int = 4
    n_experts: int = 8
    top_k: int = 2
    fine_n_experts: int = 32
    fine_top_k: int = 4
    fine_d_expert: int = 16
    fine_n_shared: int = 2
    alpha: float = 0.01
    gamma: float = 0.01
    paper_rates: float = 0.001
    cpu_threads: int = 1

    def __post_init__(self):
        self.check_common()
        check_at_most("TOP_K", self.top_k, "N_EXPERTS", self.n_experts)
        check_at_most("PAPER_RATES_SEEDS", self.paper_rates_seeds, "N_SEEDS", self.n_seeds)
        check_int("FINE_N_EXPERTS", self.fine_n_experts)
        if self.fine_n_experts:
            check_at_most("FINE_TOP_K", self.fine_top_k, "FINE_N_EXPERTS", self.fine_n_experts)

    @property
    def shapes(self) -> dict[str, dict]:
        """The expert shapes compared: "standard" and (FINE_N_EXPERTS > 0) "fine-grained"."""
        shapes = {"standard": dict(n_experts=self.n_experts, top_k=self.top_k)}
        if self.paper_rates:
            shapes[PAPER_SHAPE] = dict(n_experts=self.n_experts, top_k=self.top_k, rate=self.paper_rates)
        if self.fine_n_experts:
            shapes["fine-grained"] = dict(
                n_experts=self.fine_n_experts,
                top_k=self.fine_top_k,
                d_expert=self.fine_d_expert,
                n_shared_experts=self.fine_n_shared,
            )
        return shapes

    @property
    def grid_shapes(self) -> dict[str, dict]:
        """Shapes trained at SEED only, for the α × γ grid: the fine-grained shape at the papers' rates (the standard
        shape has both rates among its seeds' runs already)."""
        if not (self.paper_rates and self.fine_n_experts):
            return {}
        return {FINE_PAPER_SHAPE: {**self.shapes["fine-grained"], "rate": self.paper_rates}}

    @property
    def grid_runs(self) -> list[tuple[str, str]]:
        """(shape, method) of the grid's extra models, trained at SEED only."""
        return [(label, method) for label in self.grid_shapes for method in METHODS]

    def config(self, label: str, method: str) -> TransformerConfig:
        """The causal MoE LM of one shape (``label``) and balancing ``method``; a shape with a ``rate`` uses it as both
        α and γ (the papers' rates), the others ALPHA and GAMMA."""
        shape = dict({**self.shapes, **self.grid_shapes}[label])
        rate = shape.pop("rate", None)
        return lm_config(
            method,
            n_layers=self.n_layers,
            seq_len=self.seq_len,
            alpha=self.alpha if rate is None else rate,
            gamma=self.gamma if rate is None else rate,
            **shape,
        )

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(shape, method) of every model trained per seed."""
        return [(label, method) for label in self.shapes for method in METHODS]

    def seeds_of(self, label: str) -> list[int]:
        """The seeds of one configuration: N_SEEDS for the shapes' headline comparisons, the first
        PAPER_RATES_SEEDS of them for the papers'-rates configuration."""
        return self.seeds[: self.size("paper_rates_seeds")] if label == PAPER_SHAPE else self.seeds
