"""Notebook 04 over seeds: one run (train + evaluate) as a job for ``run_parallel``, and curves pooled over layers."""
from __future__ import annotations

from functools import lru_cache

import pandas as pd
import torch

from ..datasets.mnist_cifar import load_mnist_cifar
from ..moe.transformer import TransformerConfig, image_to_patches
from ..runtime import make_generator
from .routing_stability import RunSpec, evaluate_run, input_noise_curves, train_run

NOISE_PLACEMENTS = ("router input", "model input")


@lru_cache(maxsize=2)
def _data(source: str):
    """The MNIST + CIFAR data, loaded once per process."""
    return load_mnist_cifar(source, verbose=False)


def stability_splits(data, data_seed: int, n_test: int, n_probe: int):
    """(test, probe) random test-image subsets drawn from ``data_seed``: the same images for every run and seed."""
    generator = make_generator(data_seed)
    test = data.test.subset(torch.randperm(len(data.test), generator=generator)[:n_test])
    probe = data.test.subset(torch.randperm(len(data.test), generator=generator)[:n_probe])
    return test, probe


def stability_job(
    spec: RunSpec, seed: int, *, config: TransformerConfig, data_source: str, data_seed: int, n_test: int, n_probe: int,
    steps: int, batch_size: int, lr: float, patch: int, fluct_every: int, sigmas: list[float], eval_sigma: float,
    input_noise: bool = False, keep_model: bool = False,
) -> dict:
    """Train one run with ``seed`` (init, batches, noise) and evaluate it; small tables only unless ``keep_model``.

    Keys: seed, spec, row (trade-off row), curves (router-input noise), input_curves (model-input noise or None),
    fluctuation, history, model (or None).
    """
    data = _data(data_source)
    test, probe = stability_splits(data, data_seed, n_test, n_probe)
    fluct_probe = image_to_patches(probe.images[:256], patch)  # [256, tokens, patch²]
    model, history, fluct, seconds = train_run(
        spec, config=config, images=data.train.images, labels=data.train.labels, probe=fluct_probe, steps=steps,
        batch_size=batch_size, lr=lr, patch=patch, seed=seed, fluct_every=fluct_every,
    )
    curves, row = evaluate_run(spec, model, history, seconds, test, probe, sigmas, eval_sigma, patch, seed)
    inputs = None
    if input_noise:
        inputs = input_noise_curves(model, probe.images, probe.is_mnist, sorted(set(sigmas) | {eval_sigma}), patch, seed).assign(run=spec.name)
    return {"seed": seed, "spec": spec, "row": {"seed": seed, **row}, "curves": curves.assign(seed=seed, noise_at="router input"),
            "input_curves": None if inputs is None else inputs.assign(seed=seed), "fluctuation": fluct.assign(run=spec.name, seed=seed),
            "history": history, "model": model if keep_model else None}


def pooled_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Token-weighted mean Jaccard and changed share over layers and datasets per (run, noise_at, seed, sigma)."""
    keys = [k for k in ("run", "noise_at", "seed", "sigma") if k in curves.columns]
    weighted = curves.assign(j=curves.jaccard * curves.tokens, c=curves.changed * curves.tokens)
    sums = weighted.groupby(keys, sort=False)[["j", "c", "tokens"]].sum()
    return pd.DataFrame({"jaccard": sums.j / sums.tokens, "changed": sums.c / sums.tokens}).reset_index()
