"""Notebook 03's parameters: one frozen, validated object (quick-profile sizes included)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from ...datasets.mnist_cifar import SOURCES, parse_dataset_names
from ...errors import check_choice, check_range, parse_positive_ints
from ...exp1.models import INITS
from ...exp1.training import OPTIMIZERS, TrainConfig
from ...settings import StudySettings
from ...stats import seed_list


@dataclass(frozen=True)
class GateAnalysisSettings(StudySettings):
    """Notebook 03: the seeds of notebook 02's run and the gate studies (quick: 5 % of train, 1 epoch, 2 seeds)."""

    NOTEBOOK = "03_gate_analysis"

    QUICK_SIZES = {
        "n_seeds": 2,
        "hard_split_seeds": 1,
        "seed_epochs": 1,
        "study_epochs": 1,
        "train_share": 0.05,
        "test_share": 0.1,
    }
    POSITIVE = ("batch_size", "n_seeds", "seed_epochs", "study_epochs", "hard_split_seeds", "hist_bins", "workers")
    POSITIVE_FLOATS = ("lr", "balance_cv2", "balance_switch")

    seed: int = 0
    n_seeds: int = 5
    workers: int = 2
    executor: str = "auto"
    retrain: bool = False
    device: str = "auto"
    profile: str = "full"
    data_source: str = "auto"
    dataset_names: str = "auto"
    init: str = "tf"
    batch_size: int = 128
    lr: float = 0.001
    optimizer: str = "adam"
    seed_epochs: int = 10
    study_epochs: int = 6
    study_fraction: float = 0.25
    sweep_experts: str = "1,2,4,8"
    balance_cv2: float = 0.1
    balance_switch: float = 0.1
    hard_split_seeds: int = 3
    hist_bins: int = 20
    train_share: ClassVar[float] = 1.0  # not a parameter: the share of the data a full run uses; quick caps it
    test_share: ClassVar[float] = 1.0  # not a parameter: as train_share

    def __post_init__(self):
        self.check_common()
        check_choice("DATA_SOURCE", self.data_source, SOURCES)
        parse_dataset_names(self.dataset_names)
        check_choice("INIT", self.init, INITS)
        check_choice("OPTIMIZER", self.optimizer, OPTIMIZERS)
        check_range("STUDY_FRACTION", self.study_fraction, 1e-6, 1.0)
        parse_positive_ints("SWEEP_EXPERTS", self.sweep_experts)

    @property
    def experts(self) -> list[int]:
        """The numbers of experts of study 3 (1: a single expert, no gate)."""
        return parse_positive_ints("SWEEP_EXPERTS", self.sweep_experts)

    @property
    def hard_seeds(self) -> list[int]:
        """The seeds of study 6's training settings: SEED, SEED + 1, … (HARD_SPLIT_SEEDS of them)."""
        return seed_list(self.seed, self.size("hard_split_seeds"))

    @property
    def train_config(self) -> TrainConfig:
        """The seed runs' training loop (SEED_EPOCHS epochs)."""
        return TrainConfig(
            epochs=self.size("seed_epochs"),
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            seed=self.seed,
        )

    @property
    def study_config(self) -> TrainConfig:
        """Studies 3, 4 and 6's training loop (STUDY_EPOCHS epochs)."""
        return replace(self.train_config, epochs=self.size("study_epochs"))
