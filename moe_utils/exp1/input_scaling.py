"""Feeding a model rescaled pixels (e.g. raw 0-255 values instead of [0, 1]) without touching the trainer."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import check_positive


class ScaledInput(nn.Module):
    """Wraps a model so that it sees ``scale · x``; the trainer's x is pixels in [0, 1], so scale=255 gives raw pixels."""

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model = model
        self.scale = float(check_positive("SCALE", scale, integer=False))

    @property
    def experts(self) -> nn.Module:
        """The wrapped model's experts."""
        return self.model.experts

    @property
    def gate(self) -> nn.Module:
        """The wrapped model's gate."""
        return self.model.gate

    def gate_log_weights(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """log G(scale · x). -> [batch, experts]."""
        return self.model.gate_log_weights(x * self.scale, is_first)

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """log Y(scale · x). -> [batch, classes]."""
        return self.model(x * self.scale, is_first)
