"""Per-layer activation across training (source 002: checkpoints during training, per-layer measures at each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ..datasets.cognitive_tasks import TASKS, TaskSplit, accuracy_by_task
from ..errors import MoeError
from ..measures.heads import importance_shares
from ..moe.training import load_checkpoint, save_checkpoint
from ..moe.transformer import TransformerModel
from ..runtime import progress
from .head_importance import mask_gradient_importance


def residual_updates(model, tokens: torch.Tensor) -> torch.Tensor:
    """Mean |block output − block input| over positions and dims for each layer, [L], from an eval forward."""
    model.eval()
    stats = []
    hooks = [
        block.register_forward_hook(lambda mod, args, out: stats.append((out - args[0]).abs().mean().item()))
        for block in model.blocks
    ]
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.tensor(stats)


def checkpoint_every(model: TransformerModel, folder: Path, every: int, saved: list[tuple[int, Path]]):
    """An ``on_step`` hook for ``train_steps`` that saves ``model`` after every ``every``-th step into ``folder``.

    Each checkpoint's (step, path) is appended to ``saved``; the step's training loss is kept in the checkpoint.
    """

    def keep(step: int, row: dict) -> None:
        if (step + 1) % every == 0:
            path = folder / f"step{step + 1:06d}.pt"
            save_checkpoint(model, path, extra={"step": step + 1, "loss": row["loss"]})
            saved.append((step + 1, path))

    return keep


ALL_HELD_OUT = (
    f"held-out accuracy, all prompts (mean of {len(TASKS)})"  # analyse_checkpoints' column for ``accuracy_set``
)


def analyse_checkpoints(
    saved: list[tuple[int, Path]],
    probe_set: TaskSplit,
    show_progress: bool = True,
    accuracy_set: TaskSplit | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per checkpoint: held-out accuracy (``progress``) and per-layer importance / residual-update measures (``per_layer``).

    ``accuracy_set`` (e.g. every held-out prompt) adds the column ``ALL_HELD_OUT``: an accuracy with less sampling noise
    than the evaluation prompts' own, for judging where training plateaus.

    Per layer: the share measures (normalised per checkpoint, mean 1/(L·H)) and the raw ones, not rescaled per checkpoint:
    mean |∂L/∂m_h| over tasks and the layer's heads, and mean |residual update|.
    """
    rows, per_layer = [], []
    for step, path in progress(saved, desc="checkpoints", disable=not show_progress):
        ckpt = load_checkpoint(path)
        n_layers, n_heads = ckpt.config.n_layers, ckpt.config.n_heads
        by_task = mask_gradient_importance(ckpt, probe_set)  # [C, L, H]
        head_share = importance_shares(by_task.mean(0))  # [L, H], sums to 1 over all heads
        update = residual_updates(ckpt, probe_set.tokens)  # [L]
        update_share = update / update.sum() / n_heads  # per-head scale: sums to 1 over L x H cells
        raw = raw_layer_importance(by_task)  # [L], not rescaled
        acc = accuracy_by_task(ckpt, probe_set)
        rows.append(
            {
                "step": step,
                "loss (train, last step)": ckpt.checkpoint_extra["loss"],
                f"held-out accuracy (mean of {len(TASKS)}, evaluation prompts)": acc.mean(),
                **({ALL_HELD_OUT: accuracy_by_task(ckpt, accuracy_set).mean()} if accuracy_set is not None else {}),
                **{f"acc {t}": a for t, a in acc.items()},
            }
        )
        for layer in range(n_layers):
            per_layer.append(
                {
                    "step": step,
                    "layer": layer + 1,
                    "importance share per head": float(head_share[layer].mean()),
                    "residual update share per head": float(update_share[layer]),
                    "raw mean |head-mask gradient|": float(raw[layer]),
                    "raw mean |residual update|": float(update[layer]),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(per_layer)


def raw_layer_importance(by_task: torch.Tensor) -> torch.Tensor:
    """Mean |∂L/∂m_h| per layer over tasks and heads, *not* rescaled per checkpoint. by_task: [C, L, H] -> [L]."""
    return by_task.abs().mean(dim=(0, 2))


def plateau_step(steps: list[int], values: list[float], patience: int = 3, min_gain: float = 0.01) -> int | None:
    """The first step from which ``values`` (e.g. held-out accuracy) gain less than ``min_gain`` over the best so far
    for ``patience`` evaluations in a row; None when they are still rising at the end."""
    if len(steps) != len(values):
        raise MoeError(f"steps ({len(steps)}) and values ({len(values)}) must have the same length")
    best, since, start = float("-inf"), 0, None
    for step, value in zip(steps, values):
        if value > best + min_gain:
            best, since, start = max(best, value), 0, None
        else:
            best = max(best, value)
            since += 1
            start = step if since == 1 else start
            if since >= patience:
                return start
    return None
