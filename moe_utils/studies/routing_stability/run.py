"""Notebook 04's study, settings -> run -> tables: the sweep at seed SEED and the seed study, every run in parallel."""

from __future__ import annotations

import time

import pandas as pd

from ...datasets.mnist_cifar import slug
from ...runtime import run_parallel
from ...stats import paired_margin, seed_summary
from .job import pooled_curves, stability_job, stability_splits, study_data
from .method import selection_grid
from .settings import StabilitySettings
from .tables import StabilityTables

CHURN_COLUMNS = [
    "run",
    "seed",
    "steps_trained",
    "churn_last_quarter",
    "churn_at_end",
    "settled",
    "collapsed",
    "experts_used_layer1",
    "router_top1_prob",
    "router_logit_std",
]
COST_COLUMNS = ["flipped", "acc_noisy", "acc_change"]  # at EVAL_SIGMA, every router on noisy input


def seed_columns(keys: tuple[str, str]) -> list[str]:
    """The per-seed table's columns, with each dataset's accuracy ``acc_<key>``."""
    accuracy = [f"acc_{k}" for k in keys]
    return [
        "run",
        "seed",
        "acc",
        *accuracy,
        "jaccard",
        "changed",
        "experts_used_layer2",
        "train_seconds",
        *CHURN_COLUMNS[2:],
        *COST_COLUMNS,
    ]


def stability_jobs(settings: StabilitySettings) -> list[dict]:
    """The sweep at SEED, then the seed study's runs that the sweep lacks, then its other seeds."""
    specs, seed_specs, seeds = settings.specs, settings.seed_specs, settings.seeds
    seed_names, sweep_names = {s.name for s in seed_specs}, {s.name for s in specs}
    job = lambda spec, seed, **kw: dict(settings=settings, seed=seed, spec=spec, **kw)  # noqa: E731
    jobs = [job(s, settings.seed, input_noise=s.name in seed_names, keep_model=s.name == "baseline") for s in specs]
    jobs += [job(s, settings.seed, input_noise=True) for s in seed_specs if s.name not in sweep_names]
    jobs += [job(s, seed, input_noise=True) for seed in seeds[1:] for s in seed_specs]
    return jobs


def seed_tables(settings: StabilitySettings, studied: list) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(band, per_seed, pooled) of the seed study: pooled curves over seeds, each run's row with Jaccard at
    EVAL_SIGMA, and the pooled curves per seed."""
    seed_curves = pd.concat([r.curves for r in studied] + [r.input_curves for r in studied], ignore_index=True)
    pooled = pooled_curves(seed_curves)  # [run, noise_at, seed, sigma]
    band = seed_summary(pooled, ["run", "noise_at", "sigma"], ["jaccard", "changed"])
    at_eval = pooled[pooled.sigma == settings.eval_sigma].pivot_table(
        index=["run", "seed"], columns="noise_at", values=["jaccard", "changed"]
    )
    at_eval.columns = [f"{m}_{n.replace(' ', '_')}" for m, n in at_eval.columns]  # e.g. jaccard_block_input
    keys = tuple(slug(n) for n in study_data(settings.data_source, settings.dataset_names).dataset_names)
    per_seed = pd.DataFrame([r.row for r in studied])[seed_columns(keys)].merge(
        at_eval.reset_index(), on=["run", "seed"]
    )
    assert (per_seed.jaccard - per_seed.jaccard_router_input).abs().max() < 1e-9  # the two pooled routes agree
    return band, per_seed, pooled


def seed_margins(settings: StabilitySettings, per_seed: pd.DataFrame) -> pd.DataFrame:
    """Paired margins of the regularised runs against their baselines (Jaccard at the router input, accuracy, and the
    Jaccard under the other two placements: the block's input and the model's input)."""
    lam, bal = settings.lam_run, settings.balanced_run
    pairs = ((lam, "baseline"), (bal, "baseline + balance"), (bal, "baseline"))
    return pd.DataFrame(
        [
            paired_margin(per_seed, "run", a, b, v)
            for a, b in pairs
            for v in ("jaccard", "acc", "jaccard_block_input", "jaccard_model_input", "flipped", "acc_noisy")
        ]
    )


def sigma_margins(settings: StabilitySettings, band_source: pd.DataFrame) -> pd.DataFrame:
    """The regulariser's paired gain in J at every evaluation σ (router input), trained at TRAIN_SIGMA only: does it
    hold at noise levels it was not trained on? ``band_source``: pooled curves per run, noise_at, seed, sigma."""
    lam, bal = settings.lam_run, settings.balanced_run
    router = band_source[band_source.noise_at == "router input"]
    return pd.DataFrame(
        [
            {"sigma": sigma, **paired_margin(router[router.sigma == sigma], "run", a, b, "jaccard")}
            for sigma in sorted(router.sigma.unique())
            if sigma > 0
            for a, b in ((lam, "baseline"), (bal, "baseline + balance"))
        ]
    )


def source_grid(settings: StabilitySettings, model) -> pd.DataFrame:
    """E_orig / E_pert of the first 8 tokens of one probe image of each dataset (baseline, MoE layer 1)."""
    sizes = settings.sizes
    data = study_data(settings.data_source, settings.dataset_names)
    _, probe = stability_splits(data, settings.seed, sizes["n_test"], sizes["n_probe"])
    first, second = (slug(n) for n in data.dataset_names)
    grids = []
    for name, index in ((first, int(probe.is_first.nonzero()[0])), (second, int((~probe.is_first).nonzero()[0]))):
        g = selection_grid(
            model, probe.images[index], settings.eval_sigma, settings.patch, settings.seed, layer=1, tokens=8
        )
        grids.append(g.assign(dataset=name, probe_index=index, token=g.token + (0 if name == first else 8)))
    return pd.concat(grids, ignore_index=True)


def fluctuation_summary(fluct: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Per run: the first check's changed share and the mean over the second half of its own training."""
    last = fluct[fluct.step > fluct.groupby("run").step.transform("max") / 2]
    first = fluct.groupby("run").changed.agg(first_check="first")
    return first.join(last.groupby("run").changed.agg(second_half_mean="mean")).loc[runs]


def run(settings: StabilitySettings) -> StabilityTables:
    """Train and evaluate every run (sweep and seed study) in WORKERS processes; the notebook's tables."""
    started = time.perf_counter()
    results = run_parallel(
        stability_job,
        stability_jobs(settings),
        workers=settings.workers,
        desc="runs",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    specs, seed_names = settings.specs, {s.name for s in settings.seed_specs}
    sweep = results[: len(specs)]  # seed SEED, in the order of specs
    studied = [r for r in results if r.spec.name in seed_names]
    fluct = pd.concat([r.fluctuation for r in sweep], ignore_index=True)
    band, per_seed, pooled = seed_tables(settings, studied)
    seed_table = seed_summary(
        per_seed,
        ["run"],
        ["acc", "jaccard", "changed", "jaccard_model_input", "experts_used_layer1", "experts_used_layer2"],
    )
    baseline = next(r.model for r in sweep if r.spec.name == "baseline")
    info = {
        "data": study_data(settings.data_source, settings.dataset_names).describe(),
        "runs": len(results),
        "sweep runs": len(specs),
        "seed-study runs": len(studied),
        "shared with the sweep": len(studied) - len(results) + len(specs),
        "processes": settings.workers,
        "seconds": time.perf_counter() - started,
        "train seconds": sum(r.row["train_seconds"] for r in results),
    }
    return StabilityTables(
        settings,
        study_data(settings.data_source, settings.dataset_names).dataset_names,
        info,
        pd.concat([r.curves for r in sweep], ignore_index=True),
        pd.DataFrame([r.row for r in sweep]),
        fluct,
        fluctuation_summary(fluct, [s.name for s in specs]),
        source_grid(settings, baseline),
        band,
        per_seed,
        seed_table,
        seed_margins(settings, per_seed),
        pd.DataFrame([r.row for r in results])[[*CHURN_COLUMNS, "jaccard", *COST_COLUMNS]],
        pd.concat([r.flips for r in results], ignore_index=True),
        sigma_margins(settings, pooled),
    )
