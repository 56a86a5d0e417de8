"""Notebook 07's study, settings -> run -> tables: every seed trained with checkpoints in parallel, per-layer
measures at each checkpoint, plateaus and trends over seeds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..datasets.cognitive_tasks import accuracy_by_task, make_task_data
from ..moe.training import load_checkpoint
from ..runtime import run_parallel
from .layer_activation import ALL_HELD_OUT
from .layer_activation_seeds import SeedTables, evaluation_prompts, layer_activation_job, layer_trends
from .layer_activation_settings import LayerActivationSettings

QUANTITIES = {
    "importance share per head": "linear",
    "raw mean |head-mask gradient|": "log",
    "raw mean |residual update|": "log",
}  # quantity -> colour scale
TITLES = {
    "importance share per head": "(a) head-importance share per head",
    "raw mean |head-mask gradient|": "(b) raw mean |∂L/∂m_h| (not rescaled)",
    "raw mean |residual update|": "(c) raw mean |residual-stream update|",
}


@dataclass
class LayerActivationTables:
    """Everything notebook 07 plots and reports."""

    settings: LayerActivationSettings
    info: dict  # seeds, seconds, processes, training seconds per seed, held-out prompts, kept checkpoints
    first: SeedTables  # the first seed (its checkpoints kept)
    progress: pd.DataFrame  # every seed's accuracy per checkpoint
    plateaus: pd.DataFrame  # seed, plateau step, accuracy at plateau, final accuracy, best accuracy
    per_layer: pd.DataFrame  # every seed's per-layer measures per checkpoint
    seed_mean: pd.DataFrame  # per_layer averaged over seeds, per step and layer
    trends: pd.DataFrame  # per seed and quantity: layers rising, early and late layers' first and last values


def plateau_table(results: list[SeedTables]) -> pd.DataFrame:
    """Each seed's plateau step (NaN: still rising), the accuracy there, the final and the best accuracy."""

    def row(r):
        acc = r.progress.set_index("step")[ALL_HELD_OUT]
        at = acc.loc[r.plateau_step] if r.plateau_step else float("nan")
        return {
            "seed": r.seed,
            "plateau step": r.plateau_step,
            "accuracy at plateau": at,
            "final accuracy": r.progress[ALL_HELD_OUT].iloc[-1],
            "best accuracy": r.progress[ALL_HELD_OUT].max(),
        }

    return pd.DataFrame([row(r) for r in results])


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
        layer_activation_job, jobs, workers=settings.workers, desc="seeds", keep=settings.kept_runs()
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
    return LayerActivationTables(
        settings,
        info,
        first,
        pd.concat([r.progress for r in results], ignore_index=True),
        plateau_table(results),
        per_layer,
        seed_mean,
        trends,
    )
