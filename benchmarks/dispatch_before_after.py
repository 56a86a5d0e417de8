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

from moe_utils.io import paths
from moe_utils.io.atomic import atomic_path
from moe_utils.moe.layer import MoEFeedForward
from moe_utils.studies.routing_stability.job import stability_job
from moe_utils.studies.routing_stability.settings import StabilitySettings


def main() -> None:
    """Train and evaluate the baseline under both dispatches; print and save the comparison."""
    torch.set_num_threads(1)  # as notebook 04's processes
    settings = StabilitySettings(
        eval_sigmas="0.5"
    )  # notebook 04's full-profile settings: same data, test and probe images
    baseline = next(s for s in settings.specs if s.name == "baseline")
    grouped = MoEFeedForward.use_grouped_mm
    rows = []
    try:
        for dispatch in ("grouped_mm", "loop"):
            MoEFeedForward.use_grouped_mm = grouped if dispatch == "grouped_mm" else (lambda self, x: False)
            started = time.perf_counter()
            row = stability_job(settings, settings.seed, baseline).row  # notebook 04's seed job: train + evaluate
            rows.append(
                {
                    "dispatch": dispatch,
                    "test_accuracy": row["acc"],
                    "mean_jaccard_sigma_0.5": row["jaccard"],
                    "train_seconds": row["train_seconds"],
                    "job_seconds": time.perf_counter() - started,
                    "grouped_mm_available": grouped(MoEFeedForward(48, 48, settings.model.router), torch.zeros(4, 48)),
                    "machine": f"{platform.machine()} cpu, torch {torch.__version__}",
                }
            )
    finally:
        MoEFeedForward.use_grouped_mm = grouped
    result = pd.DataFrame(rows)
    with atomic_path(paths.BENCHMARK_RESULTS_DIR / "dispatch_before_after.csv") as tmp:
        result.to_csv(tmp, index=False)
    print(result.to_string(index=False))


if __name__ == "__main__":
    main()
