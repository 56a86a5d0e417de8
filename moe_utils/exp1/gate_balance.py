"""Load-balancing terms on a gate: Shazeer et al. 2017's CV² of importance and the Switch Transformer's f·P."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import check_choice, check_positive

BALANCE_KINDS = ("cv2", "switch")


def cv_squared_loss(weights: torch.Tensor) -> torch.Tensor:
    """CV(importance)² with importance_i = Σ_batch G(X)_i (Shazeer et al. 2017, eq. 6). weights: [batch, experts]
    -> []; 0 when balanced."""
    importance = weights.sum(0)  # [experts]
    if len(importance) == 1:
        return importance.new_zeros(())
    return importance.var(unbiased=False) / importance.mean().pow(2)


def switch_balance_loss(weights: torch.Tensor) -> torch.Tensor:
    """N · Σ_i f_i P_i (Fedus et al. 2021, eq. 4): f_i share of rows whose top expert is i, P_i mean G(X)_i.
    weights: [batch, experts] -> [].

    The gradient flows through P only; the value is 1 when the gate is uniform (P_i = 1/N).
    """
    n_experts = weights.shape[1]
    f = torch.bincount(weights.argmax(1), minlength=n_experts).to(weights.dtype) / len(weights)  # [experts]
    return n_experts * (f * weights.mean(0)).sum()


def balance_loss(weights: torch.Tensor, kind: str) -> torch.Tensor:
    """The named balancing term of gate weights [batch, experts]: ``"cv2"`` | ``"switch"``."""
    check_choice("BALANCE", kind, BALANCE_KINDS)
    return cv_squared_loss(weights) if kind == "cv2" else switch_balance_loss(weights)


def balance_extra_loss(
    coefficients: dict[str, tuple[str, float]],
) -> Callable[[str, nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``extra_loss`` for ``train_models``: model name -> (kind, coefficient); other models get 0."""
    for name, (kind, coefficient) in coefficients.items():
        check_choice("BALANCE", kind, BALANCE_KINDS)
        check_positive(f"BALANCE coefficient of {name!r}", coefficient, integer=False)

    def extra_loss(name: str, model: nn.Module, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        if name not in coefficients:
            return x.new_zeros(())
        kind, coefficient = coefficients[name]
        return coefficient * balance_loss(model.gate_log_weights(x, is_first).exp(), kind)

    return extra_loss
