"""Which training settings make the learned gates split the two datasets near-hard, as source 004 reports (0.99 / 1.00)?"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from torch import nn

from ..datasets.mnist_cifar import Split, slug
from ..errors import check_choice, check_positive
from .gating_stats import activation_rates, majority_share
from .input_scaling import ScaledInput
from .models import INITS, build_mixture
from .routing_probe import RoutingProbe
from .summary import final_accuracy
from .training import OPTIMIZERS, TrainConfig, train_models

GATE_LABELS = {"linear": "linear gate", "mlp": "1-hidden-layer gate"}


@dataclass(frozen=True)
class Variant:
    """One training setting: initialisation, optimiser, learning rate and pixel scale (1 = [0, 1], 255 = raw)."""

    name: str
    init: str = "tf"
    optimizer: str = "adam"
    lr: float = 1e-3
    scale: float = 1.0

    def __post_init__(self):
        check_choice("INIT", self.init, INITS)
        check_choice("OPTIMIZER", self.optimizer, OPTIMIZERS)
        check_positive("LR", self.lr, integer=False)
        check_positive("SCALE", self.scale, integer=False)


def build_variant_models(variant: Variant, gates: list[str], *, seed: int, n_classes: int = 20) -> dict[str, nn.Module]:
    """The two-expert mixtures of one variant, keyed by gate label (wrapped to see scaled pixels when scale ≠ 1)."""
    models = {}
    for i, gate in enumerate(gates):
        model = build_mixture(gate, init=variant.init, seed=seed + i, n_classes=n_classes)
        models[GATE_LABELS[gate]] = model if variant.scale == 1 else ScaledInput(model, variant.scale)
    return models


def run_variant(
    variant: Variant, train: Split, test: Split, config: TrainConfig, gates: list[str], *, seed: int
) -> dict[str, pd.DataFrame]:
    """Train one variant; return its final accuracy, final activation rates, majority shares and per-epoch
    training-batch routing."""
    return train_variant(variant, train, test, config, gates, seed=seed)[0]


def train_variant(
    variant: Variant, train: Split, test: Split, config: TrainConfig, gates: list[str], *, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, nn.Module]]:
    """``run_variant``'s tables and the trained models by name."""
    config = replace(config, optimizer=variant.optimizer, lr=variant.lr, seed=seed)
    models = build_variant_models(variant, gates, seed=seed, n_classes=train.n_classes)
    probe = RoutingProbe(len(train), config.batch_size, train.dataset_names)
    history = train_models(models, train, test, config, extra_loss=probe, progress=False)
    rates = activation_rates(models, {"train": train, "test": test})
    tag = {"variant": variant.name, "seed": seed}
    tables = {
        "accuracy": final_accuracy(history).assign(**tag),
        "rates": rates.assign(**tag),
        "majority": majority_share(rates).assign(**tag),
        "by_epoch": majority_share(probe.rates()).assign(**tag),
    }
    return tables, models


def run_variants(
    variants: list[Variant], train: Split, test: Split, config: TrainConfig, gates: list[str], seeds: list[int]
) -> dict[str, pd.DataFrame]:
    """Every variant for every seed; tables concatenated by kind (accuracy, rates, majority, by_epoch)."""
    parts = [run_variant(v, train, test, config, gates, seed=s) for v in variants for s in seeds]
    return {key: pd.concat([p[key] for p in parts], ignore_index=True) for key in parts[0]}


def source_pattern(names: tuple[str, str] = ("MNIST", "CIFAR")) -> str:
    """The label of source 004's split: the second dataset hard on one expert, the first shared."""
    return f"hard {names[1]}, shared {names[0]}"


def classify_split(
    majority: pd.DataFrame, names: tuple[str, str] = ("MNIST", "CIFAR"), hard: float = 0.97, split: str = "test"
) -> pd.DataFrame:
    """Label each run's split (on ``split``): "hard CIFAR, shared MNIST" (the source's pattern), "datasets separated",
    "collapsed to one expert", "hard MNIST only" or "soft", with the datasets ``names`` (first, second).
    ``majority`` comes from ``gating_stats.majority_share``; columns ``<second>_majority``, ``<first>_majority``."""
    first, second = names
    keys = [c for c in majority.columns if c not in ("split", "dataset", "majority_share", "majority_expert")]
    wide = majority[majority["split"] == split].pivot_table(
        index=keys, columns="dataset", values=["majority_share", "majority_expert"], sort=False
    )
    two, one = wide[("majority_share", second)], wide[("majority_share", first)]
    same = wide[("majority_expert", second)] == wide[("majority_expert", first)]
    label = pd.Series("soft", index=wide.index)
    label[(one >= hard) & (two < hard)] = f"hard {first} only"
    label[(two >= hard) & (one < hard)] = source_pattern(names)
    label[(two >= hard) & (one >= hard) & ~same] = "datasets separated"
    label[(two >= hard) & (one >= hard) & same] = "collapsed to one expert"
    columns = {f"{slug(second)}_majority": two, f"{slug(first)}_majority": one, "split_kind": label}
    return pd.DataFrame(columns).reset_index()
