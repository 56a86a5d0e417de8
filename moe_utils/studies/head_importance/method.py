"""Attention-head importance: a task probe's gradient × activation (Cognitive Mirrors) and head-mask gradients
(Michel et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ...datasets.cognitive_tasks import TASKS, TaskSplit, accuracy_by_task
from ...errors import check_positive
from ...measures.heads import (
    layer_matched_random_mask,
    masked_heads,
    random_heads_mask,
    top_heads_mask,
)
from ...runtime import make_generator


def masked_accuracy(model, data: TaskSplit, mask: torch.Tensor) -> pd.Series:
    """Accuracy per task with each head's output scaled by ``mask`` [n_layers, n_heads] (0: masked)."""
    with masked_heads(model, mask):
        return accuracy_by_task(model, data)


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
    random_acc = [masked_accuracy(model, held_out, random_heads_mask(shape, k, generator)) for _ in range(n_random)]
    for c, task in enumerate(TASKS):
        data = held_out.of_task(c)
        conditions = {}
        for m, s in shares_by_method.items():
            top = top_heads_mask(s[c], k)
            conditions[f"top-{k} ({m})"] = masked_accuracy(model, data, top)[task]
            matched = [
                masked_accuracy(model, data, layer_matched_random_mask(top, generator))[task] for _ in range(n_random)
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
            accuracy = masked_accuracy(model, held_out, top_heads_mask(s[c], k))
            for measured in TASKS:
                rows.append(
                    {"method": m, "masked": masked, "measured": measured, "drop": base[measured] - accuracy[measured]}
                )
    return pd.DataFrame(rows)
