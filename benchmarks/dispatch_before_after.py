"""Notebook 04's baseline run trained twice, with the MoE layer's grouped_mm dispatch and with its per-expert loop.

Shows that the dispatch of ``MoEFeedForward`` does not change an experiment's key numbers (test accuracy and mean
Jaccard at σ = 0.5, as in notebook 04's full profile). Prints the table last and writes it to
benchmarks/results/dispatch_before_after.csv.

    python benchmarks/dispatch_before_after.py        # about 1 min on the 2-core CPU; needs the data cache
"""
from __future__ import annotations

import platform
import time

import pandas as pd
import torch

from moe_utils.datasets.mnist_cifar import load_mnist_cifar
from moe_utils.io import paths
from moe_utils.io.atomic import atomic_path
from moe_utils.moe.layer import MoEFeedForward
from moe_utils.moe.router import RouterConfig
from moe_utils.moe.transformer import TransformerConfig, image_to_patches
from moe_utils.runtime import make_generator
from moe_utils.studies.routing_stability import RunSpec, evaluate_runs, run_all


def main() -> None:
    """Train and evaluate the baseline under both dispatches; print and save the comparison."""
    torch.set_num_threads(1)  # as notebook 04
    data = load_mnist_cifar("auto", verbose=False)
    generator = make_generator(0)  # notebook 04's SEED = 0: same test and probe images
    test = data.test.subset(torch.randperm(len(data.test), generator=generator)[:5000])
    probe = data.test.subset(torch.randperm(len(data.test), generator=generator)[:1000])
    config = TransformerConfig(d_model=48, n_heads=4, n_layers=2, d_expert=48, router=RouterConfig(n_experts=8, top_k=2), max_len=16)
    specs = [RunSpec("baseline", 0.0, 0.0, "scaled")]
    grouped = MoEFeedForward.use_grouped_mm
    rows = []
    try:
        for dispatch in ("grouped_mm", "loop"):
            MoEFeedForward.use_grouped_mm = grouped if dispatch == "grouped_mm" else (lambda self, x: False)
            started = time.perf_counter()
            runs = run_all(specs, config=config, images=data.train.images, labels=data.train.labels,
                           probe=image_to_patches(probe.images[:256], 8), steps=500, batch_size=64, lr=0.002, patch=8,
                           seed=0, fluct_every=10)
            seconds = time.perf_counter() - started
            _, table = evaluate_runs(specs, runs, test, probe, [0.5], 0.5, 8, 0)
            rows.append({"dispatch": dispatch, "test_accuracy": table["acc"].item(), "mean_jaccard_sigma_0.5": table["jaccard"].item(),
                         "train_seconds": seconds, "grouped_mm_available": grouped(MoEFeedForward(48, 48, config.router), torch.zeros(4, 48)),
                         "machine": f"{platform.machine()} cpu, torch {torch.__version__}"})
    finally:
        MoEFeedForward.use_grouped_mm = grouped
    result = pd.DataFrame(rows)
    with atomic_path(paths.BENCHMARK_RESULTS_DIR / "dispatch_before_after.csv") as tmp:
        result.to_csv(tmp, index=False)
    print(result.to_string(index=False))


if __name__ == "__main__":
    main()
