"""Learning strategies for the gate, all run by the one trainer: joint, balanced, separate gate LR, frozen pre-trained experts."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..datasets.mnist_cifar import Split
from ..errors import check_positive
from .gate_balance import balance_extra_loss
from .models import build_mixture
from .training import TrainConfig, train_models


def gate_lr_groups(model: nn.Module, lr: float, factor: float) -> list[dict]:
    """Parameter groups with the gate at ``factor`` × the experts' learning rate ``lr``."""
    check_positive("GATE_LR_FACTOR", factor, integer=False)
    return [
        {"params": list(model.experts.parameters()), "lr": lr},
        {"params": list(model.gate.parameters()), "lr": lr * factor},
    ]


def freeze_experts_from(model: nn.Module, source: nn.Module) -> list[dict]:
    """Copy ``source``'s experts into ``model``, freeze them, and return parameter groups holding the gate only."""
    model.experts.load_state_dict(source.experts.state_dict())
    model.experts.requires_grad_(False)
    return [{"params": [p for p in model.gate.parameters() if p.requires_grad]}]


def strategy_name(gate_label: str, strategy: str) -> str:
    """The model key of one (gate, strategy) pair."""
    return f"{gate_label} | {strategy}"


def run_gate_strategies(
    train: Split,
    test: Split,
    config: TrainConfig,
    *,
    gates: dict[str, str],
    balance: dict[str, tuple[str, float]],
    lr_factors: list[float],
    init: str = "tf",
    seed: int,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Train every (gate, strategy) pair in one trainer call, after pre-training the pre-designed experts.

    gates: label -> gate kind; balance: strategy label -> (kind, coefficient). Strategies: "joint", the balance
    labels, "gate lr ×f" for f in ``lr_factors``, and "frozen experts" (gate trained on the experts of the
    pre-designed model, which is itself trained first for ``config.epochs``). Returns (history with columns
    gate, strategy; models incl. the pre-trained "pre-designed gate").
    """
    pre = {"pre-designed gate": build_mixture("pre_designed", init=init, seed=seed, n_classes=train.n_classes)}
    pre_history = train_models(pre, train, test, config, progress=progress).assign(
        gate="pre-designed", strategy="pre-training"
    )
    models, groups, balanced = {}, {}, {}
    for g, (label, kind) in enumerate(gates.items()):
        strategies = ["joint", *balance, *(f"gate lr ×{f:g}" for f in lr_factors), "frozen experts"]
        for s, strategy in enumerate(strategies):
            name = strategy_name(label, strategy)
            models[name] = build_mixture(
                kind, init=init, seed=seed + 1 + g, n_classes=train.n_classes
            )  # same start for every strategy of a gate
            if strategy in balance:
                balanced[name] = balance[strategy]
            elif strategy.startswith("gate lr"):
                groups[name] = gate_lr_groups(models[name], config.lr, lr_factors[s - 1 - len(balance)])
            elif strategy == "frozen experts":
                groups[name] = freeze_experts_from(models[name], pre["pre-designed gate"])
    history = train_models(
        models, train, test, config, param_groups=groups, extra_loss=balance_extra_loss(balanced), progress=progress
    )
    parts = history["model"].str.split(" | ", regex=False)
    history = history.assign(gate=parts.str[0], strategy=parts.str[1])
    return pd.concat([pre_history, history], ignore_index=True), {**pre, **models}


@torch.no_grad()
def experts_equal(a: nn.Module, b: nn.Module) -> bool:
    """True when two mixtures have identical expert parameters."""
    return all(torch.equal(p, q) for p, q in zip(a.experts.parameters(), b.experts.parameters()))
