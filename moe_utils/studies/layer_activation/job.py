"""Notebook 07 over seeds: one seed's training with evenly spaced checkpoints and their per-layer analysis."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ...datasets.cognitive_tasks import (
    ASCII_VOCAB_SIZE,
    TASKS,
    answer_loss,
    balanced_batch,
    make_task_data,
)
from ...moe.training import train_steps
from ...moe.transformer import TransformerModel
from ...runtime import make_generator
from .method import ALL_HELD_OUT, analyse_checkpoints, checkpoint_every, plateau_verdict


def evaluation_prompts(held, per_task: int):
    """The first ``per_task`` held-out prompts of every family (the checkpoints' evaluation set)."""
    return held.subset(torch.cat([torch.nonzero(held.task == c).flatten()[:per_task] for c in range(len(TASKS))]))


@dataclass
class SeedTables:
    """One seed's training with checkpoints: accuracy and per-layer measures at each checkpoint."""

    seed: int
    progress: pd.DataFrame  # step, held-out accuracy per family and overall, seed
    per_layer: pd.DataFrame  # step, layer, importance share, raw |∂L/∂m_h|, raw |residual update|, seed
    plateau: dict  # plateau_verdict on the accuracy over all held-out prompts: gain over the last quarter, threshold
    seconds: float
    saved: list  # [(step, path)] of the kept checkpoints ([] unless kept)
    states: dict = field(default_factory=dict)  # {"model": the final state dict} (kept by io.trained)


def layer_activation_job(settings, seed: int, keep_checkpoints: bool = False) -> SeedTables:
    """Train seed ``seed``'s model of ``settings`` (a LayerActivationSettings) with N_CHECKPOINTS evenly spaced
    checkpoints; analyse every one. The checkpoints are deleted unless ``keep_checkpoints``; the plateau is read from
    the mean accuracy on *all* held-out prompts (``plateau_verdict``)."""
    sizes, config, seq_len, batch_size, lr = (
        settings.sizes,
        settings.model,
        settings.seq_len,
        settings.batch_size,
        settings.lr,
    )
    n_train, n_held_out, eval_per_task, steps = (
        sizes["n_train"],
        sizes["n_held_out"],
        settings.eval_per_task,
        sizes["steps"],
    )
    n_checkpoints, folder = settings.n_checkpoints, settings.checkpoint_dir / f"seed{seed}"
    train, held, _ = make_task_data(seed, n_train, n_held_out, seq_len=seq_len)
    probe_set = evaluation_prompts(held, eval_per_task)
    model = TransformerModel(config, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=seed)
    saved: list[tuple[int, Path]] = []
    shutil.rmtree(folder, ignore_errors=True)  # no checkpoint of an earlier run is mistaken for this one's
    batches = make_generator(seed + 1)
    started = time.perf_counter()
    train_steps(
        model,
        lambda step: balanced_batch(train, batch_size, batches),
        answer_loss,
        steps,
        lr=lr,
        seed=seed,
        max_grad_norm=1.0,
        on_step=checkpoint_every(model, Path(folder), steps // n_checkpoints, saved),
        progress=False,
    )
    seconds = time.perf_counter() - started
    progress, per_layer = analyse_checkpoints(saved, probe_set, show_progress=False, accuracy_set=held)
    plateau = plateau_verdict(progress["step"].tolist(), progress[ALL_HELD_OUT].tolist(), n_prompts=len(held))
    if not keep_checkpoints:
        shutil.rmtree(folder, ignore_errors=True)
    return SeedTables(
        seed,
        progress.assign(seed=seed),
        per_layer.assign(seed=seed),
        plateau,
        seconds,
        saved if keep_checkpoints else [],
        {"model": model.state_dict()},
    )


def layer_trends(per_layer: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Per seed: layers whose ``quantity`` rises from the first to the last checkpoint, and the first → last means of
    layers 1–4 and 9–12 (the source's early and late groups)."""
    rows = []
    for seed, g in per_layer.groupby("seed"):
        wide = g.pivot(index="step", columns="layer", values=quantity)  # [steps, layers]
        first, last = wide.iloc[0], wide.iloc[-1]
        early, late = [l for l in wide.columns if l <= 4], [l for l in wide.columns if l >= wide.columns.max() - 3]
        rows.append(
            {
                "seed": seed,
                "quantity": quantity,
                "layers rising": int((last > first).sum()),
                "layers": len(wide.columns),
                "layers 1-4 first": first[early].mean(),
                "layers 1-4 last": last[early].mean(),
                "late layers first": first[late].mean(),
                "late layers last": last[late].mean(),
            }
        )
    return pd.DataFrame(rows)


def rank_trends(per_layer: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Per seed and layer: Spearman's rank correlation of ``quantity`` with the training step over every checkpoint
    (+1: rises at every checkpoint, −1: falls at every one)."""
    rows = []
    for (seed, layer), g in per_layer.groupby(["seed", "layer"]):
        rho = g["step"].rank().corr(g[quantity].rank())  # Spearman: Pearson of the ranks
        rows.append({"seed": seed, "layer": layer, "quantity": quantity, "spearman": float(rho)})
    return pd.DataFrame(rows)
