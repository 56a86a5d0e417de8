"""Recording how a gate routes the training batches, epoch by epoch, through the trainer's ``extra_loss`` hook."""

from __future__ import annotations

import math
from collections import defaultdict

import pandas as pd
import torch
from torch import nn

from ..errors import check_positive


class RoutingProbe:
    """An ``extra_loss`` that adds nothing and records mean G(X) per model, epoch and dataset over the training batches.

    The rates of an epoch are averaged over that epoch's batches while the gate is still learning, so they lag
    slightly behind end-of-epoch rates. Models without a gate are skipped.
    """

    def __init__(self, n_train: int, batch_size: int, names: tuple[str, str] = ("MNIST", "CIFAR")):
        self.names = names
        self.steps_per_epoch = math.ceil(check_positive("n_train", n_train) / check_positive("BATCH_SIZE", batch_size))
        self.calls: dict[str, int] = defaultdict(int)
        self.sums: dict[tuple[str, int, str], torch.Tensor] = {}  # (model, epoch, dataset) -> [experts]
        self.counts: dict[tuple[str, int, str], int] = defaultdict(int)

    @torch.no_grad()
    def __call__(self, name: str, model: nn.Module, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        epoch = self.calls[name] // self.steps_per_epoch + 1
        self.calls[name] += 1
        if hasattr(model, "gate_log_weights"):
            weights = model.gate_log_weights(x, is_first).exp()  # [batch, experts]
            for dataset, mask in ((self.names[0], is_first), (self.names[1], ~is_first)):
                key = (name, epoch, dataset)
                total = weights[mask].sum(0)  # [experts]
                self.sums[key] = self.sums[key] + total if key in self.sums else total
                self.counts[key] += int(mask.sum())
        return x.new_zeros(())

    def rates(self) -> pd.DataFrame:
        """Activation rates per model, epoch, dataset and expert (long format)."""
        rows = []
        for (name, epoch, dataset), total in self.sums.items():
            rates = (total / max(self.counts[(name, epoch, dataset)], 1)).tolist()
            rows += [
                {"model": name, "epoch": epoch, "dataset": dataset, "expert": i + 1, "rate": r}
                for i, r in enumerate(rates)
            ]
        return pd.DataFrame(rows)
