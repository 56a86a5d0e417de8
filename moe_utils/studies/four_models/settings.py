"""Notebook 02's parameters: one frozen, validated object (quick-profile sizes included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...datasets.mnist_cifar import SOURCES, parse_dataset_names
from ...errors import check_choice
from ...exp1.models import INITS
from ...exp1.training import OPTIMIZERS, TrainConfig
from ...settings import StudySettings


@dataclass(frozen=True)
class FourModelsSettings(StudySettings):
    """Notebook 02: the four models of source 004 trained once (quick: 2 epochs on 10 % of each split)."""

    NOTEBOOK = "02_four_models"

    QUICK_SIZES = {"epochs": 2, "train_share": 0.1, "test_share": 0.1}
    POSITIVE = ("epochs", "batch_size")
    POSITIVE_FLOATS = ("lr",)

    seed: int = 0
    retrain: bool = False
    executor: str = "auto"
    device: str = "auto"
    profile: str = "full"
    data_source: str = "auto"
    dataset_names: str = "auto"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.001
    optimizer: str = "adam"
    init: str = "tf"
    train_share: ClassVar[float] = 1.0  # not a parameter: the share of the data a full run uses; quick caps it
    test_share: ClassVar[float] = 1.0  # not a parameter: as train_share

    def __post_init__(self):
        self.check_common()
        check_choice("DATA_SOURCE", self.data_source, SOURCES)
        parse_dataset_names(self.dataset_names)
        check_choice("OPTIMIZER", self.optimizer, OPTIMIZERS)
        check_choice("INIT", self.init, INITS)

    @property
    def train_config(self) -> TrainConfig:
        """The training loop's settings at this profile's epochs."""
        return TrainConfig(
            epochs=self.size("epochs"), batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer, seed=self.seed
        )
