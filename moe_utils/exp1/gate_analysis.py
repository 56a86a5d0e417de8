"""Per-input gate weights: how G(X)_1 is distributed over MNIST and CIFAR inputs, and how often the gate is near-hard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..datasets.mnist_cifar import Split
from .gating_stats import class_activation_rates_from_weights, gate_weights

HARD_THRESHOLD = 0.9


def has_learned_gate(model: nn.Module) -> bool:
    """True for a mixture whose gate has trainable parameters (not the single expert, not the pre-designed gate)."""
    return hasattr(model, "gate_log_weights") and any(True for _ in model.gate.parameters())


def expert_order(weights: torch.Tensor, is_mnist: torch.Tensor) -> torch.Tensor:
    """Experts sorted by their MNIST share, largest first (expert 1 = the MNIST-heavy one). weights: [n, experts] -> [experts]."""
    return torch.sort(weights[is_mnist].mean(0), descending=True, stable=True).indices


def aligned_gate_weights(model: nn.Module, splits: dict[str, Split]) -> dict[str, torch.Tensor]:
    """G(X) per split with experts reordered by MNIST share on the first split. -> split -> [n, experts]."""
    weights = {name: gate_weights(model, split).cpu() for name, split in splits.items()}
    first = next(iter(splits))
    order = expert_order(weights[first], splits[first].is_mnist.cpu())
    return {name: w[:, order] for name, w in weights.items()}


def weight_summary(weights: torch.Tensor, threshold: float = HARD_THRESHOLD) -> dict[str, float]:
    """Summary of one dataset's gate weights [n, experts]: mean/std/quantiles of G_1 and the share of near-hard rows."""
    g1 = weights[:, 0]  # [n]
    rate = g1.mean().item()
    return {
        "activation_rate_e1": rate,
        "std_g1": g1.std().item() if len(g1) > 1 else 0.0,
        "q10_g1": g1.quantile(0.1).item(),
        "median_g1": g1.median().item(),
        "q90_g1": g1.quantile(0.9).item(),
        f"frac_max_gt_{threshold}": (weights.max(1).values > threshold).float().mean().item(),
        "frac_within_0.1_of_rate": ((g1 - rate).abs() <= 0.1).float().mean().item(),
    }


def gate_weight_distributions(
    models: dict[str, nn.Module], splits: dict[str, Split], bins: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Histograms of G(X)_1 (aligned experts) and summaries, per learned gate, split and dataset.

    Returns (histogram: model, split, dataset, bin_left, bin_right, share; summary: model, split, dataset, n, …).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    hist_rows, summary_rows = [], []
    for name, model in models.items():
        if not has_learned_gate(model):
            continue
        for split_name, weights in aligned_gate_weights(model, splits).items():
            is_mnist = splits[split_name].is_mnist.cpu()
            for dataset, mask in (("MNIST", is_mnist), ("CIFAR", ~is_mnist)):
                w = weights[mask]  # [n_dataset, experts]
                counts, _ = np.histogram(w[:, 0].numpy(), bins=edges)
                share = counts / max(counts.sum(), 1)
                keys = {"model": name, "split": split_name, "dataset": dataset}
                hist_rows += [
                    {**keys, "bin_left": lo, "bin_right": hi, "share": s}
                    for lo, hi, s in zip(edges[:-1], edges[1:], share)
                ]
                summary_rows.append({**keys, "n": int(mask.sum()), **weight_summary(w)})
    return pd.DataFrame(hist_rows), pd.DataFrame(summary_rows)


def aligned_class_rates(
    models: dict[str, nn.Module], align_on: Split, split: Split, class_names: list[str]
) -> pd.DataFrame:
    """Per-class activation rates on ``split`` with experts ordered by MNIST share on ``align_on`` (long: model,
    class, class_name, expert, rate)."""
    rows = []
    for name, model in models.items():
        if not hasattr(model, "gate_log_weights"):
            continue
        weights = aligned_gate_weights(model, {"align": align_on, "eval": split})["eval"]  # [n, experts]
        table = class_activation_rates_from_weights(weights, split.labels.cpu(), len(class_names))  # [classes, experts]
        for c, rates in enumerate(table.tolist()):
            rows += [
                {"model": name, "class": c, "class_name": class_names[c], "expert": i + 1, "rate": r}
                for i, r in enumerate(rates)
            ]
    return pd.DataFrame(rows)


def class_routing_summary(class_rates: pd.DataFrame, used: float = 0.1) -> pd.DataFrame:
    """Per model: how many classes each expert mainly serves, and how many classes are split (no expert ≥ 1 − ``used``)."""
    top = class_rates.loc[class_rates.groupby(["model", "class"], sort=False)["rate"].idxmax()]
    rows = []
    for model, part in top.groupby("model", sort=False):
        mnist, cifar = part[part["class"] < 10], part[part["class"] >= 10]
        rows.append(
            {
                "model": model,
                "mean_top_share_mnist": mnist["rate"].mean(),
                "mean_top_share_cifar": cifar["rate"].mean(),
                f"classes_split_(top<{1 - used:g})": int((part["rate"] < 1 - used).sum()),
                "experts_serving_a_class": part["expert"].nunique(),
            }
        )
    return pd.DataFrame(rows)
