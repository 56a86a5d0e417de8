"""Notebook 03's studies, settings -> run -> tables: notebook 02's run over seeds (in parallel), the gates' weights and
class routing, the expert sweep, gate training strategies, and how hard the split is under other training settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import torch

from ..datasets.mnist_cifar import load_mnist_cifar, random_share, slug
from ..io.trained import KeptTables, state_dicts
from ..runtime import make_generator, resolve_device, run_parallel
from ..stats import group_stats
from .expert_sweep import build_sweep, routing_summary
from .gate_analysis import aligned_class_rates, classes_without_images, gate_weight_distributions
from .gate_strategies import experts_equal, run_gate_strategies
from .gating_stats import activation_rates, align_experts, majority_share
from .hard_split import Variant, classify_split, source_pattern, train_variant
from .seed_study import (
    SeedRun,
    SeedRuns,
    claims_across_seeds,
    combine_seed_runs,
    final_accuracy_per_seed,
    train_four_models,
)
from .settings import GateAnalysisSettings
from .summary import SOURCE_COLUMN, final_accuracy, source_activation_rates
from .training import train_models

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


def seed_runs(settings: GateAnalysisSettings) -> SeedRuns:
    """Study 5's runs: every seed in its own process (one torch thread), experts aligned on the first dataset's train share."""
    jobs = [dict(settings=settings, seed=seed) for seed in settings.seeds]
    runs = run_parallel(
        four_models_job,
        jobs,
        workers=settings.workers,
        desc="seeds",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    device = resolve_device(settings.device)
    for run in runs:  # kept models load on the CPU
        run.models = {name: model.to(device) for name, model in run.models.items()}
    return combine_seed_runs(runs)


def gate_weight_tables(settings: GateAnalysisSettings, runs: SeedRuns) -> dict:
    """Study 1: the first seed's G(X)_1 histograms, and per-input weight summaries of every seed."""
    both, bins = splits(settings).both, settings.hist_bins
    hist, _ = gate_weight_distributions(runs.models[settings.seed], both, bins=bins)
    summaries = pd.concat(
        [gate_weight_distributions(runs.models[s], both, bins=bins)[1].assign(seed=s) for s in settings.seeds],
        ignore_index=True,
    )
    columns = ["activation_rate_e1", "std_g1", "median_g1", "frac_max_gt_0.9", "frac_within_0.1_of_rate"]
    stats = summaries.groupby(["model", "split", "dataset"], sort=False)[columns].agg(["mean", "std"])
    return {"hist": hist, "summaries": summaries, "summary_stats": stats}


def class_tables(settings: GateAnalysisSettings, runs: SeedRuns) -> dict:
    """Study 2: per-class activation rates of the first seed and of every seed."""
    s = splits(settings)
    names = s.data.class_names
    rates = aligned_class_rates(runs.models[settings.seed], s.train, s.test, names)
    every = pd.concat(
        [aligned_class_rates(runs.models[seed], s.train, s.test, names).assign(seed=seed) for seed in settings.seeds],
        ignore_index=True,
    )
    return {"class_rates": rates, "all_class_rates": every, "classes_left_out": classes_without_images(s.test, names)}


def kept_job(fn, settings: GateAnalysisSettings) -> dict:
    """The tables of a one-job study ``fn(settings, seed)`` run here, or loaded when its models are kept."""
    job = dict(settings=settings, seed=settings.seed)
    return run_parallel(
        fn, [job], workers=1, desc="study", keep=settings.kept_runs(), executor=settings.executor_choice
    )[0].tables


def sweep_tables(settings: GateAnalysisSettings) -> dict:
    """Study 3: mixtures of 1–8 linear or MLP experts under a linear or MLP gate (kept in data/trained/)."""
    return kept_job(sweep_job, settings)


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


def strategy_tables(settings: GateAnalysisSettings) -> pd.DataFrame:
    """Study 4: gate training strategies (joint, balance losses, gate learning rates, frozen experts; kept)."""
    return kept_job(strategy_job, settings)["strategy_table"]


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


def seed_tables(settings: GateAnalysisSettings, runs: SeedRuns) -> dict:
    """Study 5: accuracy bands, final accuracy, activation rates beside source 004's, and its claims, over seeds."""
    finals = final_accuracy_per_seed(runs.history)
    long = finals.melt(id_vars=["model", "seed"], value_vars=["train", "test"], var_name="split", value_name="accuracy")
    rate_stats = group_stats(runs.rates, ["model", "split", "dataset", "expert"], "rate")
    if splits(settings).data.is_source_data:  # source 004's rates beside ours; other data is not compared
        published = source_activation_rates().rename(columns={"rate": SOURCE_COLUMN})
        rate_stats = rate_stats.merge(published, how="left", on=["model", "split", "dataset", "expert"])
    return {
        "bands": group_stats(runs.history, ["model", "epoch", "split"], "accuracy"),
        "finals": finals,
        "final_stats": group_stats(long, ["model", "split"], "accuracy"),
        "rate_stats": rate_stats,
        "claims": claims_across_seeds(finals),
    }


def hard_split_tables(settings: GateAnalysisSettings, runs: SeedRuns) -> dict:
    """Study 6: which training settings give source 004's split (hard CIFAR, shared MNIST), per setting and seed."""
    names = splits(settings).test.dataset_names
    one, two = (f"{slug(n)}_majority" for n in names)
    seed_majority = majority_share(runs.rates[runs.rates["model"].isin(GATES)])
    jobs = [dict(settings=settings, variant=v, seed=s) for v in VARIANTS for s in settings.hard_seeds]
    parts = run_parallel(
        variant_job,
        jobs,
        workers=settings.workers,
        desc="settings",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    parts = [p.tables for p in parts]
    hard = {key: pd.concat([p[key] for p in parts], ignore_index=True) for key in parts[0]}
    kinds = classify_split(hard["majority"], names)
    summary = (
        kinds.groupby(["variant", "model"], sort=False)
        .agg(
            **{f"{two}_mean": (two, "mean"), f"{two}_min": (two, "min"), f"{one}_mean": (one, "mean")},
            seed_like=("split_kind", lambda k: int((k == source_pattern(names)).sum())),
            runs=("split_kind", "size"),
            kinds=("split_kind", lambda k: "; ".join(sorted(set(k)))),
        )
        .reset_index()
    )
    accuracy = hard["accuracy"].groupby(["variant", "model"], sort=False)["test"].mean().rename("test_accuracy_mean")
    summary = summary.merge(accuracy.reset_index(), on=["variant", "model"])
    full = majority_share(runs.routing_by_epoch[runs.routing_by_epoch["model"].isin(GATES)])
    full = full.assign(variant=f"02 setting, full data (study 5, {len(settings.seeds)} seeds)")
    by_epoch = pd.concat([hard["by_epoch"], full], ignore_index=True)
    final_majority = pd.concat(
        [hard["majority"], seed_majority.assign(variant=full["variant"].iloc[0])], ignore_index=True
    )
    numbers = pd.concat(
        [final_majority.assign(table="final, per seed"), by_epoch.assign(table="per epoch, training batches")],
        ignore_index=True,
    )
    return {
        "seed_kinds": classify_split(seed_majority, names),
        "hard_summary": summary,
        "by_epoch": by_epoch,
        "final_majority": final_majority,
        "hard_numbers": numbers,
    }


@dataclass
class GateAnalysisTables:
    """Everything notebook 03 plots and reports (each study's tables by name) and the seconds each study took."""

    settings: GateAnalysisSettings
    splits: Splits
    runs: SeedRuns
    tables: dict
    timings: dict

    def __getitem__(self, name: str):
        return self.tables[name]


def run(settings: GateAnalysisSettings) -> GateAnalysisTables:
    """Every study of notebook 03, timed; the seeds and the settings of study 6 in WORKERS processes."""
    timings, tables = {}, {}

    def timed(label, fn, *args):
        started = time.perf_counter()
        out = fn(settings, *args)
        timings[label] = time.perf_counter() - started
        return out

    s = splits(settings)
    runs = timed("seeds (studies 1, 2, 5, 6)", seed_runs)
    tables.update(gate_weight_tables(settings, runs), **class_tables(settings, runs), **seed_tables(settings, runs))
    tables.update(timed("study 3 (expert sweep)", sweep_tables))
    tables["strategy_table"] = timed("study 4 (gate strategies)", strategy_tables)
    tables.update(timed("study 6 (training settings)", hard_split_tables, runs))
    return GateAnalysisTables(settings, s, runs, tables, timings)
