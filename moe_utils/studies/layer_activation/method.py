"""Per-layer activation across training (source 002): checkpoints during training, per-layer measures at each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...datasets.cognitive_tasks import TASKS, TaskSplit, accuracy_by_task
from ...errors import MoeError
from ...measures import hooks
from ...measures.heads import importance_shares, mask_gradient_importance, relative_residual_update
from ...moe.training import load_checkpoint, save_checkpoint
from ...moe.transformer import TransformerModel
from ...runtime import progress


@torch.no_grad()
def block_inputs_outputs(model, tokens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every block's (input, output) residual stream [B, S, d] from one eval forward, first block first."""
    model.eval()
    with hooks.record(model.blocks) as seen:
        model(tokens)
    return [(seen.input(i), seen.output(i)) for i in range(len(model.blocks))]


def mean_abs_updates(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean |block output − block input| over positions and dims for each (input, output) pair, [L]."""
    return torch.tensor([(out - inp).abs().mean().item() for inp, out in pairs])


def relative_updates(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Per (input, output) pair, the mean over tokens of ‖output − input‖ / ‖input‖ (notebook 08's measure), [L]."""
    return torch.tensor([relative_residual_update(inp, out) for inp, out in pairs])


def residual_updates(model, tokens: torch.Tensor) -> torch.Tensor:
    """Mean |block output − block input| over positions and dims for each layer, [L], from an eval forward."""
    return mean_abs_updates(block_inputs_outputs(model, tokens))


def relative_residual_updates(model, tokens: torch.Tensor) -> torch.Tensor:
    """Per layer, the mean over tokens of ‖block output − block input‖ / ‖block input‖, [L], from an eval forward."""
    return relative_updates(block_inputs_outputs(model, tokens))


def gradient_measures(model, data: TaskSplit, loss_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """Per layer [L]: the raw mean |∂L/∂m_h| (not rescaled) and each layer's share of their sum at this checkpoint,
    which sums to 1 and does not change when the loss is scaled (``loss_scale``: a test's knob); and per task
    [C, L, H] the importance."""
    by_task = mask_gradient_importance(model, data, len(TASKS), loss_scale=loss_scale)  # [C, L, H]
    raw = raw_layer_importance(by_task)  # [L]
    return {"by task": by_task, "raw": raw, "layer share": raw / raw.sum()}


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

    Per layer: the share measures (normalised per checkpoint, mean 1/(L·H)); the raw ones, not rescaled per checkpoint:
    mean |∂L/∂m_h| over tasks and the layer's heads, and mean |residual update|; and two relative versions: the
    layer's share of the gradients' sum at that checkpoint, and ‖residual update‖ / ‖residual‖ per token.
    """
    rows, per_layer = [], []
    for step, path in progress(saved, desc="checkpoints", disable=not show_progress):
        ckpt = load_checkpoint(path)
        n_layers, n_heads = ckpt.config.n_layers, ckpt.config.n_heads
        gradients = gradient_measures(ckpt, probe_set)
        head_share = importance_shares(gradients["by task"].mean(0))  # [L, H], sums to 1 over all heads
        pairs = block_inputs_outputs(ckpt, probe_set.tokens)  # one forward: every block's (input, output)
        update = mean_abs_updates(pairs)  # [L]
        update_share = update / update.sum() / n_heads  # per-head scale: sums to 1 over L x H cells
        raw, layer_share = gradients["raw"], gradients["layer share"]  # [L]: not rescaled; a share of this checkpoint
        relative_update = relative_updates(pairs)  # [L]
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
                    "layer share of |head-mask gradient|": float(layer_share[layer]),
                    "relative residual update": float(relative_update[layer]),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(per_layer)


def raw_layer_importance(by_task: torch.Tensor) -> torch.Tensor:
    """Mean |∂L/∂m_h| per layer over tasks and heads, *not* rescaled per checkpoint. by_task: [C, L, H] -> [L]."""
    return by_task.abs().mean(dim=(0, 2))


def plateau_verdict(steps: list[int], values: list[float], n_prompts: int, quarter: float = 0.25) -> dict:
    """Whether an accuracy curve has stopped rising: the least-squares slope over the last ``quarter`` of the
    checkpoints (at least 3) times that span is the gain still being made; it counts as rising when that gain exceeds
    twice the sampling error of a difference of two accuracies measured on ``n_prompts`` prompts,
    2·√(2·p(1−p)/n) at the final accuracy p. Returns the gain, that threshold and ``plateaued``."""
    if len(steps) != len(values):
        raise MoeError(f"steps ({len(steps)}) and values ({len(values)}) must have the same length")
    if len(steps) < 3:
        raise MoeError(f"a plateau needs at least 3 checkpoints; got {len(steps)}")
    tail = max(3, round(len(steps) * quarter))
    x, y = np.asarray(steps[-tail:], dtype=float), np.asarray(values[-tail:], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    gain = slope * float(x[-1] - x[0])
    p = float(values[-1])
    threshold = 2 * float(np.sqrt(2 * p * (1 - p) / n_prompts))
    return {
        "from step": int(x[0]),
        "gain over the last quarter": gain,
        "rise over the last quarter": float(y[-1] - y[0]),  # last minus first checkpoint of the window, unfitted
        "threshold": threshold,
        "plateaued": gain <= threshold,
    }
