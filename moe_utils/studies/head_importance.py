"""Attention-head importance: a task probe's gradient × activation (Cognitive Mirrors) and head-mask gradients
(Michel et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..datasets.cognitive_tasks import TASKS, TaskSplit, accuracy_by_task
from ..errors import check_positive
from ..measures.heads import (
    layer_matched_random_mask,
    random_heads_mask,
    top_heads_mask,
)
from ..runtime import make_generator


def last_head_outputs(
    model, tokens: torch.Tensor, head_mask: torch.Tensor | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Every head's output at the last position, [N, n_layers, n_heads, d_head], from an eval-mode forward."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            model(tokens[i : i + batch_size], head_mask=head_mask, record=True)
            out.append(torch.stack([h[:, -1] for h in model.head_outputs()], 1))  # [B, L, H, d_head]
    return torch.cat(out)


def head_mask_gradients(model, tokens: torch.Tensor, answers: torch.Tensor, loss_scale: float = 1.0) -> torch.Tensor:
    """Per-sample ∂L_b/∂m_h at m = 1 for the answer loss L_b (cross-entropy times ``loss_scale``), [B, L, H]
    (Σ over positions and dims of grad ⊙ head)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    logits = model(tokens, record=True)[:, -1]  # [B, vocab]
    (loss_scale * F.cross_entropy(logits, answers, reduction="sum")).backward()
    grads = [(h.grad * h).sum((1, 3)) for h in model.head_outputs()]  # L x [B, H]
    model.zero_grad(set_to_none=True)
    return torch.stack(grads, 1).detach()


def mask_gradient_importance(
    model, data: TaskSplit, n_classes: int = len(TASKS), batch_size: int = 256, loss_scale: float = 1.0
) -> torch.Tensor:
    """Michel et al. 2019 I_h = E_x |∂L(x)/∂m_h| per task, [C, L, H], over the examples of ``data`` (L: the answer's
    cross-entropy times ``loss_scale``)."""
    total, count = None, torch.zeros(n_classes)
    for i in range(0, len(data), batch_size):
        g = head_mask_gradients(
            model, data.tokens[i : i + batch_size], data.answers[i : i + batch_size], loss_scale
        ).abs()  # [B, L, H]
        task = data.task[i : i + batch_size]
        if total is None:
            total = torch.zeros(n_classes, *g.shape[1:])
        total.index_add_(0, task, g)
        count += torch.bincount(task, minlength=n_classes).float()
    return total / count.clamp(min=1).view(-1, 1, 1)


def random_condition(k: int, n_random: int) -> str:
    """The name of the uniform random-heads condition."""
    return f"random {k} (mean of {n_random})"


def matched_condition(k: int, method: str) -> str:
    """The name of the layer-matched random-heads condition of one method's top heads."""
    return f"layer-matched random {k} ({method})"


def ablation_table(
    model, held_out: TaskSplit, shares_by_method: dict[str, torch.Tensor], k: int, n_random: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Held-out accuracy per task with its top-k heads (per method) masked, against two controls: k random heads
    drawn from all heads, and, per method, k random heads in the same layers as the task's top k (``n_random`` draws
    each, their mean accuracy); one row per task/condition."""
    check_positive("k", k)
    base = accuracy_by_task(model, held_out)
    shape = next(iter(shares_by_method.values())).shape[1:]
    generator = make_generator(seed)
    rows = []
    random_acc = [accuracy_by_task(model, held_out, random_heads_mask(shape, k, generator)) for _ in range(n_random)]
    for c, task in enumerate(TASKS):
        data = held_out.of_task(c)
        conditions = {}
        for m, s in shares_by_method.items():
            top = top_heads_mask(s[c], k)
            conditions[f"top-{k} ({m})"] = accuracy_by_task(model, data, top)[task]
            matched = [
                accuracy_by_task(model, data, layer_matched_random_mask(top, generator))[task] for _ in range(n_random)
            ]
            conditions[matched_condition(k, m)] = float(np.mean(matched))
        conditions[random_condition(k, n_random)] = float(np.mean([r[task] for r in random_acc]))
        for name, acc in conditions.items():
            rows.append(
                {
                    "task": task,
                    "condition": name,
                    "k": k,
                    "accuracy": acc,
                    "baseline": base[task],
                    "drop": base[task] - acc,
                }
            )
    return pd.DataFrame(rows)


def cross_task_table(model, held_out: TaskSplit, shares_by_method: dict[str, torch.Tensor], k: int) -> pd.DataFrame:
    """The cross-task ablation: for each method and task A, A's top-k heads masked and every task's accuracy measured;
    one row per (method, masked, measured) with its drop (the diagonal masks each task's own heads)."""
    check_positive("k", k)
    base = accuracy_by_task(model, held_out)
    rows = []
    for m, s in shares_by_method.items():
        for c, masked in enumerate(TASKS):
            accuracy = accuracy_by_task(model, held_out, top_heads_mask(s[c], k))
            for measured in TASKS:
                rows.append(
                    {"method": m, "masked": masked, "measured": measured, "drop": base[measured] - accuracy[measured]}
                )
    return pd.DataFrame(rows)
