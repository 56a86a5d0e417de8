"""Notebook 04 over seeds: one run (train + evaluate) as a job for ``run_parallel``, and curves pooled over layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd
import torch

from ...datasets.mnist_cifar import load_mnist_cifar, slug
from ...moe.transformer import TransformerModel, image_to_patches
from ...runtime import make_generator
from .method import (
    RunSpec,
    block_input_curves,
    evaluate_run,
    input_noise_curves,
    prediction_flips,
    train_run,
)

NOISE_PLACEMENTS = ("router input", "model input")


@lru_cache(maxsize=2)
def study_data(source: str, dataset_names: str = "auto"):
    """The two image datasets (MNIST + CIFAR by default), loaded once per process."""
    return load_mnist_cifar(source, dataset_names=dataset_names, verbose=False)


def stability_splits(data, data_seed: int, n_test: int, n_probe: int):
    """(test, probe) random test-image subsets drawn from ``data_seed``: the same images for every run and seed."""
    generator = make_generator(data_seed)
    test = data.test.subset(torch.randperm(len(data.test), generator=generator)[:n_test])
    probe = data.test.subset(torch.randperm(len(data.test), generator=generator)[:n_probe])
    return test, probe


@dataclass
class RunTables:
    """One trained and evaluated run: its trade-off row and curves, and the model when kept."""

    seed: int
    spec: RunSpec
    row: dict  # the trade-off row (accuracy, Jaccard at EVAL_SIGMA, router sharpness, train_seconds, …)
    curves: pd.DataFrame  # router-input noise: run, layer, dataset, sigma, jaccard, changed, tokens, seed, noise_at
    input_curves: pd.DataFrame | None  # model-input (pixel) and block-input noise (noise_at), or None
    fluctuation: pd.DataFrame  # step, layer, changed, run, seed
    flips: pd.DataFrame  # sigma, flipped, acc_noisy, acc_clean, acc_change, run, seed (noisy routers, clean experts)
    history: pd.DataFrame
    model: TransformerModel | None
    states: dict = field(default_factory=dict)  # {"model": the trained state dict} (kept by io.trained)


def stability_job(settings, seed: int, spec: RunSpec, input_noise: bool = False, keep_model: bool = False) -> RunTables:
    """Train one run of ``settings`` (a StabilitySettings) with ``seed`` (init, batches, noise) and evaluate it."""
    sizes = settings.sizes
    data = study_data(settings.data_source, settings.dataset_names)
    test, probe = stability_splits(data, settings.seed, sizes["n_test"], sizes["n_probe"])
    fluct_probe = image_to_patches(probe.images[:256], settings.patch)  # [256, tokens, patch²]
    run = train_run(
        spec,
        config=settings.model,
        images=data.train.images,
        labels=data.train.labels,
        probe=fluct_probe,
        steps=sizes["steps"],
        batch_size=settings.batch_size,
        lr=settings.lr,
        patch=settings.patch,
        seed=seed,
        fluct_every=sizes["fluct_every"],
        n_classes=data.n_classes,
        warmup=sizes["warmup_steps"],
    )
    model, history, fluct, seconds = run.model, run.history, run.fluctuation, run.seconds
    sigmas, eval_sigma, patch = settings.sigmas, settings.eval_sigma, settings.patch
    curves, row = evaluate_run(spec, model, history, seconds, test, probe, sigmas, eval_sigma, patch, seed)
    flips = prediction_flips(model, test.images, test.labels, sorted(set(sigmas) | {eval_sigma}), patch, seed)
    at = flips[flips.sigma == eval_sigma].iloc[0]
    row.update(churn_row(settings, run.history, run.fluctuation, row["experts_used_layer1"]))
    row.update({"flipped": float(at.flipped), "acc_noisy": float(at.acc_noisy), "acc_change": float(at.acc_change)})
    inputs = None
    if input_noise:
        keys = tuple(slug(n) for n in data.dataset_names)
        placements = [
            curves_of(model, probe.images, probe.is_first, sorted(set(sigmas) | {eval_sigma}), patch, seed, keys=keys)
            for curves_of in (input_noise_curves, block_input_curves)
        ]
        inputs = pd.concat(placements, ignore_index=True).assign(run=spec.name, seed=seed)
    return RunTables(
        seed,
        spec,
        {"seed": seed, **row},
        curves.assign(seed=seed, noise_at="router input"),
        inputs,
        fluct.assign(run=spec.name, seed=seed),
        flips.assign(run=spec.name, seed=seed),
        history,
        model if keep_model else None,
        {"model": model.state_dict()},
    )


def churn_row(settings, history: pd.DataFrame, fluctuation: pd.DataFrame, experts_used_layer1: float) -> dict:
    """The run's training-time churn (share of probe tokens changing their expert set between checks, the layer with
    the most changes): mean over the last quarter of training and at the last check; whether it settled (churn at the
    last check below SETTLED_CHANGE) and whether layer 1 collapsed onto TOP_K experts."""
    steps = len(history)
    worst = fluctuation.groupby("step")["changed"].max()  # [checks]
    late = worst[worst.index > 0.75 * steps]
    return {
        "steps_trained": steps,
        "churn_last_quarter": float(late.mean()) if len(late) else float("nan"),
        "churn_at_end": float(worst.iloc[-1]) if len(worst) else float("nan"),
        "settled": bool(worst.iloc[-1] < settings.settled_change) if len(worst) else False,
        "collapsed": bool(experts_used_layer1 <= settings.top_k + 0.05),
    }


def pooled_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Token-weighted mean Jaccard and changed share over layers and datasets per (run, noise_at, seed, sigma)."""
    keys = [k for k in ("run", "noise_at", "seed", "sigma") if k in curves.columns]
    weighted = curves.assign(j=curves.jaccard * curves.tokens, c=curves.changed * curves.tokens)
    sums = weighted.groupby(keys, sort=False)[["j", "c", "tokens"]].sum()
    return pd.DataFrame({"jaccard": sums.j / sums.tokens, "changed": sums.c / sums.tokens}).reset_index()
