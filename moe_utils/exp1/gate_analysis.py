"""Per-input gate weights: how G(X)_1 is distributed over each dataset's inputs, and how often the gate is near-hard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..datasets.mnist_cifar import Split, slug
from .gating_stats import class_activation_rates_from_weights, gate_weights

HARD_THRESHOLD = 0.9


def has_learned_gate(model: nn.Module) -> bool:
    """True for a mixture whose gate has trainable parameters (not the single expert, not the pre-designed gate)."""
    return hasattr(model, "gate_log_weights") and any(True for _ in model.gate.parameters())


def expert_order(weights: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
    """Experts sorted by their share of the first dataset, largest first. weights: [n, experts] -> [experts]."""
    return torch.sort(weights[is_first].mean(0), descending=True, stable=True).indices


def aligned_gate_weights(model: nn.Module, splits: dict[str, Split]) -> dict[str, torch.Tensor]:
    """G(X) per split with experts reordered by the first dataset's share on the first split. -> split -> [n, experts]."""
    weights = {name: gate_weights(model, split).cpu() for name, split in splits.items()}
    first = next(iter(splits))
    order = expert_order(weights[first], splits[first].is_first.cpu())
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
            is_first, names = splits[split_name].is_first.cpu(), splits[split_name].dataset_names
            for dataset, mask in ((names[0], is_first), (names[1], ~is_first)):
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
    """Per-class activation rates on ``split`` with experts ordered by the first dataset's share on ``align_on`` (long: model,
    class, class_name, expert, rate); classes without images in ``split`` are left out (``classes_without_images``)."""
    present = set(split.labels.unique().tolist())
    rows = []
    for name, model in models.items():
        if not hasattr(model, "gate_log_weights"):
            continue
        weights = aligned_gate_weights(model, {"align": align_on, "eval": split})["eval"]  # [n, experts]
        table = class_activation_rates_from_weights(weights, split.labels.cpu(), len(class_names))  # [classes, experts]
        for c, rates in enumerate(table.tolist()):
            if c not in present:
                continue
            rows += [
                {"model": name, "class": c, "class_name": class_names[c], "expert": i + 1, "rate": r}
                for i, r in enumerate(rates)
            ]
    return pd.DataFrame(rows)


def classes_without_images(split: Split, class_names: list[str]) -> list[str]:
    """The names of the classes that have no image in ``split`` (a small dataset's quick run can miss some)."""
    present = set(split.labels.unique().tolist())
    return [name for c, name in enumerate(class_names) if c not in present]


def class_routing_summary(class_rates: pd.DataFrame, used: float = 0.1) -> pd.DataFrame:
    """Per model: each dataset's mean top-expert share per class, how many classes are split (no expert ≥ 1 − ``used``)
    and how many experts serve a class; datasets are read off the class names (``"<dataset>:<class>"``)."""
    top = class_rates.loc[class_rates.groupby(["model", "class"], sort=False)["rate"].idxmax()]
    dataset = top["class_name"].str.split(":").str[0]
    datasets = list(dict.fromkeys(dataset))
    rows = []
    for model, part in top.groupby("model", sort=False):
        rows.append(
            {
                "model": model,
                **{f"mean_top_share_{slug(d)}": part.loc[dataset[part.index] == d, "rate"].mean() for d in datasets},
                f"classes_split_(top<{1 - used:g})": int((part["rate"] < 1 - used).sum()),
                "experts_serving_a_class": part["expert"].nunique(),
            }
        )
    return pd.DataFrame(rows)
