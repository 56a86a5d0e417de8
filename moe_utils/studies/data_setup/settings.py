"""Notebook 01's parameters: one frozen, validated object."""

from __future__ import annotations

from dataclasses import dataclass

from ...datasets.mnist_cifar import SOURCES, parse_dataset_names
from ...errors import check_bool, check_choice
from ...settings import StudySettings


@dataclass(frozen=True)
class DataSetupSettings(StudySettings):
    """Notebook 01: which archives, how to name them, and how many example images."""

    NOTEBOOK = "01_data_setup"

    POSITIVE = ("samples_per_class",)

    seed: int = 0
    device: str = "auto"
    profile: str = "full"
    data_source: str = "auto"
    dataset_names: str = "auto"
    rebuild_cache: bool = False
    samples_per_class: int = 6

    def __post_init__(self):
        self.check_common()
        check_choice("DATA_SOURCE", self.data_source, SOURCES)
        parse_dataset_names(self.dataset_names)
        check_bool("REBUILD_CACHE", self.rebuild_cache)
