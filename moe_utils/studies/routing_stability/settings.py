"""Notebook 04's parameters as one frozen, validated object: the models, the runs and the evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...datasets.mnist_cifar import SOURCES, parse_dataset_names
from ...errors import MoeError, check_at_most, check_choice, check_divides, check_range, parse_floats
from ...moe.router import SCORINGS, RouterConfig
from ...moe.transformer import TransformerConfig
from ...settings import StudySettings
from .method import SURROGATES, RunSpec, build_run_specs, build_seed_specs


@dataclass(frozen=True)
class StabilitySettings(StudySettings):
    """Routing stability under input noise (source ``003``), validated under the notebook's parameter names."""

    NOTEBOOK = "04_routing_stability"

    QUICK_SIZES = {"steps": 15, "warmup_steps": 3, "n_test": 200, "n_probe": 60, "fluct_every": 3, "n_seeds": 2}
    POSITIVE = (
        "d_model",
        "n_layers",
        "n_experts",
        "steps",
        "batch_size",
        "n_test",
        "n_probe",
        "fluct_every",
        "n_seeds",
        "workers",
        "warmup_steps",
    )
    POSITIVE_FLOATS = ("lr", "lambda_for_sigma_sweep", "balance_alpha", "seed_lambda")
    NONNEGATIVE = ("train_sigma", "extra_surrogate_lambda", "balanced_lambda", "eval_sigma", "settled_change")

    seed: int = 0
    n_seeds: int = 5
    workers: int = 2
    executor: str = "auto"
    retrain: bool = False  # train again even when kept (io.trained)
    device: str = "auto"
    profile: str = "full"
    data_source: str = "auto"
    dataset_names: str = "auto"
    patch: int = 8
    d_model: int = 48
    n_heads: int = 4
    n_layers: int = 2
    n_experts: int = 8
    top_k: int = 2
    scoring: str = "softmax"
    steps: int = 500
    batch_size: int = 64
    lr: float = 0.002
    surrogate: str = "scaled"
    lambdas: str = "0, 1, 3, 10, 30"
    train_sigma: float = 0.5
    sigma_sweep: str = "0.2, 1.0"
    lambda_for_sigma_sweep: float = 1.0
    extra_surrogate_lambda: float = 3.0
    balanced_lambda: float = 3.0
    seed_lambda: float = 3.0
    balance_alpha: float = 0.1
    eval_sigmas: str = "0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2"
    eval_sigma: float = 0.5
    n_test: int = 5000
    n_probe: int = 1000
    fluct_every: int = 10
    warmup_steps: int = 50
    settled_change: float = 0.05

    def __post_init__(self):
        self.check_common()
        check_choice("DATA_SOURCE", self.data_source, SOURCES)
        parse_dataset_names(self.dataset_names)
        check_choice("PATCH", self.patch, (4, 8, 16))
        check_divides("N_HEADS", self.n_heads, "D_MODEL", self.d_model)
        check_at_most("TOP_K", self.top_k, "N_EXPERTS", self.n_experts)
        check_choice("SCORING", self.scoring, SCORINGS)
        check_choice("SURROGATE", self.surrogate, SURROGATES)
        check_range("SETTLED_CHANGE", self.settled_change, 0.0, 1.0)
        if self.size("warmup_steps") >= self.size("steps"):  # in this profile
            raise MoeError(
                f"WARMUP_STEPS={self.warmup_steps!r} is not allowed; it must be below STEPS={self.size('steps')} (the "
                "learning rate then decays to 0 at the last step)"
            )
        _ = (self.specs, self.sigmas)  # LAMBDAS (must hold 0), SIGMA_SWEEP and EVAL_SIGMAS parse here, before any work

    @property
    def sigmas(self) -> list[float]:
        """The evaluation σ of the Jaccard curves."""
        return parse_floats("EVAL_SIGMAS", self.eval_sigmas)

    @property
    def specs(self) -> list[RunSpec]:
        """The sweep's runs at seed SEED: λ sweep, other training σ, other surrogate, noisy top-k, balanced runs."""
        return build_run_specs(
            parse_floats("LAMBDAS", self.lambdas),
            self.train_sigma,
            self.surrogate,
            sigma_sweep=parse_floats("SIGMA_SWEEP", self.sigma_sweep),
            lambda_for_sigma_sweep=self.lambda_for_sigma_sweep,
            extra_surrogate_lambda=self.extra_surrogate_lambda,
            balanced_lambda=self.balanced_lambda,
            balance_alpha=self.balance_alpha,
        )

    def spec_table(self) -> pd.DataFrame:
        """The sweep's runs as a table (name, λ, σ, surrogate, noise, balance α)."""
        return pd.DataFrame([vars(s) for s in self.specs])

    @property
    def seed_specs(self) -> list[RunSpec]:
        """The four runs repeated over seeds: baseline and λ = SEED_LAMBDA, each with and without the balance loss."""
        return build_seed_specs(self.seed_lambda, self.train_sigma, self.surrogate, self.balance_alpha)

    @property
    def model(self) -> TransformerConfig:
        """The MoE vision transformer every run trains."""
        router = RouterConfig(n_experts=self.n_experts, top_k=self.top_k, scoring=self.scoring)
        return TransformerConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            d_expert=self.d_model,
            router=router,
            max_len=(32 // self.patch) ** 2,
        )

    @property
    def lam_run(self) -> str:
        """The name of the seed study's regularised run without the balance loss."""
        return f"λ={self.seed_lambda:g}"

    @property
    def balanced_run(self) -> str:
        """The name of the seed study's regularised run with the balance loss."""
        return f"λ={self.seed_lambda:g} + balance"
