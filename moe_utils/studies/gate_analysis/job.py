"""Notebook 03's jobs, each one seed's training on the run's splits (kept in data/trained/): notebook 02's four models,
study 3's expert sweep, study 4's gate strategies and one training setting of study 6."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import torch

from ...datasets.mnist_cifar import load_mnist_cifar, random_share, slug
from ...exp1.expert_sweep import build_sweep, routing_summary
from ...exp1.gate_analysis import aligned_class_rates
from ...exp1.gate_strategies import experts_equal, run_gate_strategies
from ...exp1.gating_stats import activation_rates, align_experts, majority_share
from ...exp1.hard_split import Variant, train_variant
from ...exp1.seed_study import (
    SeedRun,
    train_four_models,
)
from ...exp1.summary import final_accuracy
from ...exp1.training import train_models
from ...io.trained import KeptTables, state_dicts
from ...runtime import make_generator, resolve_device
from .settings import GateAnalysisSettings

GATES = ("linear gate", "1-hidden-layer gate")


VARIANTS = (
    Variant("02 setting: tf init, Adam 1e-3, pixels/255"),
    Variant("torch init", init="torch"),
    Variant("raw pixels 0-255", scale=255.0),
    Variant("Adam lr 1e-2", lr=1e-2),
    Variant("Adam lr 1e-4", lr=1e-4),
    Variant("SGD lr 0.5", optimizer="sgd", lr=0.5),
)


@dataclass(frozen=True)
class Splits:
    """The data of one run: the full training split, test, and the studies' share of training."""

    data: object  # MnistCifar
    train: object  # Split, flat on the device
    test: object
    study_train: object

    @property
    def both(self) -> dict:
        """{"train": train, "test": test}."""
        return {"train": self.train, "test": self.test}


@lru_cache(maxsize=1)
def splits(settings: GateAnalysisSettings) -> Splits:
    """The run's splits, drawn from SEED (the same in every process)."""
    device = resolve_device(settings.device)
    data = load_mnist_cifar(settings.data_source, dataset_names=settings.dataset_names, verbose=False)
    generator = make_generator(settings.seed)
    train = random_share(data.train, settings.size("train_share"), generator)
    test = random_share(data.test, settings.size("test_share"), generator)
    study_train = train.subset(
        torch.randperm(len(train), generator=generator)[: int(len(train) * settings.study_fraction)]
    )
    return Splits(data, train.flat(device), test.flat(device), study_train.flat(device))


def four_models_job(settings: GateAnalysisSettings, seed: int) -> SeedRun:
    """Notebook 02's four models with ``seed`` (initialisation and batch order) on the run's full training split."""
    s = splits(settings)
    return train_four_models(s.train, s.test, settings.train_config, seed=seed, init=settings.init)


def variant_job(settings: GateAnalysisSettings, variant: Variant, seed: int) -> KeptTables:
    """Study 6: one training setting's two-expert mixtures (linear and 1-hidden-layer gate) with ``seed``."""
    s = splits(settings)
    tables, models = train_variant(variant, s.study_train, s.test, settings.study_config, ["linear", "mlp"], seed=seed)
    return KeptTables(tables, state_dicts(models))


def sweep_job(settings: GateAnalysisSettings, seed: int) -> KeptTables:
    """Study 3's models trained with ``seed`` on the studies' training share, their tables and state dicts."""
    s, experts = splits(settings), settings.experts
    n_classes = s.train.n_classes
    models, grid = build_sweep(
        [n for n in experts if n > 1],
        ["linear", "mlp"],
        ["linear", "mlp"],
        settings.init,
        seed=seed,
        n_classes=n_classes,
    )
    if 1 in experts:
        single, single_grid = build_sweep(
            [1], ["linear", "mlp"], ["linear"], settings.init, seed=seed + 1000, n_classes=n_classes
        )
        models, grid = {**single, **models}, pd.concat([single_grid.assign(gate="none"), grid], ignore_index=True)
    history = train_models(models, s.study_train, s.test, settings.study_config, progress=False)
    rates = align_experts(activation_rates(models, {"train": s.study_train, "test": s.test}))
    final = final_accuracy(history).merge(grid, on="model")
    routing = routing_summary(rates).merge(grid, on="model")
    largest = [name for name, n in zip(grid["model"], grid["n_experts"]) if n == max(experts)]
    class_rates = aligned_class_rates({m: models[m] for m in largest}, s.study_train, s.test, s.data.class_names)
    tables = {
        "sweep_final": final,
        "sweep_routing": routing,
        "sweep_class_rates": class_rates,
        "sweep_table": routing.merge(final[["model", "train", "test"]], on="model"),
    }
    return KeptTables(tables, state_dicts(models))


def strategy_job(settings: GateAnalysisSettings, seed: int) -> KeptTables:
    """Study 4's models trained with ``seed``, their table and state dicts."""
    s = splits(settings)
    history, models = run_gate_strategies(
        s.study_train,
        s.test,
        settings.study_config,
        gates={"linear gate": "linear", "1-hidden-layer gate": "mlp"},
        balance={"balance CV²": ("cv2", settings.balance_cv2), "balance Switch": ("switch", settings.balance_switch)},
        lr_factors=[0.1, 10],
        init=settings.init,
        seed=seed,
    )
    for gate in GATES:  # the frozen experts really stayed the pre-trained ones
        assert experts_equal(models[f"{gate} | frozen experts"], models["pre-designed gate"])
    rates = align_experts(activation_rates(models, {"train": s.study_train, "test": s.test}))
    final = final_accuracy(history)
    parts = final["model"].str.split(" | ", regex=False)
    final = final.assign(gate=parts.str[0], strategy=parts.str[1].fillna("pre-designed split"))
    test = rates[rates["split"] == "test"]
    e1 = test[test["expert"] == 1].pivot(index="model", columns="dataset", values="rate")
    majority = majority_share(rates)
    majority = majority[majority["split"] == "test"].pivot(index="model", columns="dataset", values="majority_share")
    names = s.test.dataset_names
    table = (
        final.set_index("model")
        .join(e1.rename(columns={n: f"{slug(n)}_e1_test" for n in names}))
        .join(majority.rename(columns={n: f"{slug(n)}_majority_test" for n in names}))
        .reset_index()
    )
    return KeptTables({"strategy_table": table}, state_dicts(models))
