"""Notebook 03's run, settings -> tables: notebook 02's run over seeds (in parallel), the gates' weights and
class routing, the expert sweep, gate training strategies, and how hard the split is under other training settings."""

from __future__ import annotations

import time

import pandas as pd

from ...datasets.mnist_cifar import slug
from ...exp1.gate_analysis import aligned_class_rates, classes_without_images, gate_weight_distributions
from ...exp1.gating_stats import majority_share
from ...exp1.hard_split import classify_split, source_pattern
from ...exp1.seed_study import (
    SeedRuns,
    claims_across_seeds,
    combine_seed_runs,
    final_accuracy_per_seed,
)
from ...exp1.summary import SOURCE_COLUMN, source_activation_rates
from ...runtime import resolve_device, run_parallel
from ...stats import group_stats
from .job import GATES, VARIANTS, four_models_job, splits, strategy_job, sweep_job, variant_job
from .settings import GateAnalysisSettings
from .tables import GateAnalysisTables


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


def strategy_tables(settings: GateAnalysisSettings) -> pd.DataFrame:
    """Study 4: gate training strategies (joint, balance losses, gate learning rates, frozen experts; kept)."""
    return kept_job(strategy_job, settings)["strategy_table"]


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
    return GateAnalysisTables(settings=settings, splits=s, runs=runs, timings=timings, rates=runs.rates, **tables)
