"""Notebook 07's study, settings -> run -> tables: every seed trained with checkpoints in parallel, per-layer
measures at each checkpoint, plateaus and trends over seeds."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from ...datasets.cognitive_tasks import accuracy_by_task, make_task_data
from ...moe.training import load_checkpoint
from ...runtime import run_parallel
from .job import SeedTables, evaluation_prompts, layer_activation_job, layer_trends, rank_trends
from .method import ALL_HELD_OUT
from .settings import LayerActivationSettings
from .tables import LayerActivationTables

QUANTITIES = {
    "importance share per head": "linear",
    "raw mean |head-mask gradient|": "log",
    "raw mean |residual update|": "log",
    "layer share of |head-mask gradient|": "linear",
    "relative residual update": "log",
}  # quantity -> colour scale
TITLES = {
    "importance share per head": "(a) head-importance share per head",
    "raw mean |head-mask gradient|": "(b) raw mean |∂L/∂m_h| (not rescaled)",
    "raw mean |residual update|": "(c) raw mean |residual-stream update|",
    "layer share of |head-mask gradient|": "(d) layer share of |∂L/∂m_h| (sums to 1)",
    "relative residual update": "(e) ‖update‖ / ‖residual‖ (per token)",
}


def plateau_table(results: list[SeedTables]) -> pd.DataFrame:
    """Each seed's final and best accuracy, the gain over the last quarter of checkpoints against the threshold of
    ``plateau_verdict``, and whether it plateaued."""

    def row(r):
        return {
            "seed": r.seed,
            "final accuracy": r.progress[ALL_HELD_OUT].iloc[-1],
            "best accuracy": r.progress[ALL_HELD_OUT].max(),
            "from step": r.plateau["from step"],
            "gain over the last quarter": r.plateau["gain over the last quarter"],
            "threshold (2 sampling errors)": r.plateau["threshold"],
            "margin (threshold - gain)": r.plateau["threshold"] - r.plateau["gain over the last quarter"],
            "rise over the last quarter": r.plateau["rise over the last quarter"],
            "plateaued": "yes" if r.plateau["plateaued"] else "no: still rising",
        }

    return pd.DataFrame([row(r) for r in results])


def rank_summary(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per quantity and layer: Spearman ρ with the step, mean and std over seeds, and the seeds where it is > 0.5
    (rising through training) or < −0.5 (falling)."""
    grouped = ranks.groupby(["quantity", "layer"], sort=False)["spearman"]
    return pd.DataFrame(
        {
            "rho mean": grouped.mean(),
            "rho std": grouped.std(ddof=1),
            "seeds rising (rho > 0.5)": grouped.apply(lambda r: int((r > 0.5).sum())),
            "seeds falling (rho < -0.5)": grouped.apply(lambda r: int((r < -0.5).sum())),
            "seeds": grouped.size(),
        }
    ).reset_index()


def check_kept_checkpoint(settings: LayerActivationSettings, first: SeedTables) -> int:
    """Reload the first seed's last checkpoint and check it reproduces its accuracy row; the held-out prompt count."""
    sizes = settings.sizes
    _, held, _ = make_task_data(settings.seed, sizes["n_train"], sizes["n_held_out"], seq_len=settings.seq_len)
    probe_set = evaluation_prompts(held, settings.eval_per_task)
    column = next(c for c in first.progress.columns if c.startswith("held-out accuracy"))
    if not Path(first.saved[-1][1]).exists():  # a kept run whose checkpoint files were deleted since
        print(f"the first seed's checkpoints are no longer in {settings.checkpoint_dir}; RETRAIN = True writes them")
        return len(held)
    final = load_checkpoint(first.saved[-1][1])
    assert abs(accuracy_by_task(final, probe_set).mean() - first.progress[column].iloc[-1]) < 1e-12
    return len(held)


def run(settings: LayerActivationSettings) -> LayerActivationTables:
    """Train every seed in WORKERS processes (the first keeps its checkpoints); the notebook's tables."""
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    jobs = [dict(settings=settings, seed=s, keep_checkpoints=s == settings.seed) for s in settings.seeds]
    results = run_parallel(
        layer_activation_job,
        jobs,
        workers=settings.workers,
        desc="seeds",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    first = results[0]
    info = {
        "seeds": len(results),
        "seconds": time.perf_counter() - started,
        "processes": settings.workers,
        "train seconds": [r.seconds for r in results],
        "kept checkpoints": len(first.saved),
        "held-out prompts": check_kept_checkpoint(settings, first),
    }
    per_layer = pd.concat([r.per_layer for r in results], ignore_index=True)
    seed_mean = per_layer.groupby(["step", "layer"])[list(QUANTITIES)].mean().reset_index()
    trends = pd.concat([layer_trends(per_layer, q) for q in QUANTITIES], ignore_index=True)
    ranks = pd.concat([rank_trends(per_layer, q) for q in QUANTITIES], ignore_index=True)
    return LayerActivationTables(
        settings,
        info,
        first,
        pd.concat([r.progress for r in results], ignore_index=True),
        plateau_table(results),
        per_layer,
        seed_mean,
        trends,
        ranks,
        rank_summary(ranks),
    )
