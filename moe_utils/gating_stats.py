"""Statistics of how a gate splits the data: activation rates per dataset and per class."""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from .data import Split
from .training import EVAL_CHUNK, as_float


@torch.no_grad()
def gate_weights(model: nn.Module, split: Split) -> torch.Tensor:
    """G(X) for every row of a flat split. -> [n, experts]."""
    model.eval()
    out = [
        model.gate_log_weights(as_float(split.images[i : i + EVAL_CHUNK]), split.is_mnist[i : i + EVAL_CHUNK]).exp()
        for i in range(0, len(split), EVAL_CHUNK)
    ]
    return torch.cat(out)


def activation_rates_from_weights(weights: torch.Tensor, is_mnist: torch.Tensor) -> pd.DataFrame:
    """ActivationRate(i|D) = mean of G(X)_i over X in D, for D in {MNIST, CIFAR}. weights: [n, experts]."""
    rows = []
    for dataset, mask in (("MNIST", is_mnist), ("CIFAR", ~is_mnist)):
        means = weights[mask].mean(0)  # [experts]
        rows += [{"dataset": dataset, "expert": i + 1, "rate": m.item()} for i, m in enumerate(means)]
    return pd.DataFrame(rows)


def activation_rates(models: dict[str, nn.Module], splits: dict[str, Split]) -> pd.DataFrame:
    """Activation rates of every gated model on every split (long format: model, split, dataset, expert, rate)."""
    frames = []
    for name, model in models.items():
        if not hasattr(model, "gate_log_weights"):
            continue
        for split_name, split in splits.items():
            frame = activation_rates_from_weights(gate_weights(model, split).cpu(), split.is_mnist.cpu())
            frames.append(frame.assign(model=name, split=split_name))
    return pd.concat(frames, ignore_index=True)[["model", "split", "dataset", "expert", "rate"]]


def rate_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Wide table like the seed's Figure 2: rows (model, dataset), columns (split, expert)."""
    table = rates.pivot_table(index=["model", "dataset"], columns=["split", "expert"], values="rate", sort=False)
    return table.reindex(columns=sorted(table.columns, key=lambda c: (c[0] != "train", c[1])))
