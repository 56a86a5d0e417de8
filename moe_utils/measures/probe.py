"""The task probe of Cognitive Mirrors: a linear classifier of the task from every head's output, and its gradient
× activation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import check_positive
from ..runtime import make_generator


def train_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    steps: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> nn.Linear:
    """Linear softmax probe on flattened per-head outputs features [N, L, H, d_head] -> labels [N] (full-batch AdamW)."""
    check_positive("steps", steps)
    x = features.flatten(1)  # [N, L*H*d_head]
    probe = nn.Linear(x.shape[1], n_classes)
    generator = make_generator(seed)
    nn.init.normal_(probe.weight, std=0.01, generator=generator)
    nn.init.zeros_(probe.bias)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return probe.eval()


def probe_accuracy(probe: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose probe argmax equals the label."""
    with torch.no_grad():
        return float((probe(features.flatten(1)).argmax(-1) == labels).float().mean())


def probe_item_importance(probe: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sample's mean_dims(∂logit_y/∂head ⊙ head) for its own label y: [N, L, H] (``probe_importance`` averages
    it per class)."""
    x = features.detach().clone().requires_grad_(True)  # [N, L, H, d_head]
    logits = probe(x.flatten(1))  # [N, C]
    logits.gather(1, labels[:, None]).sum().backward()  # each sample's own class logit
    return (x.grad * x).mean(-1).detach()


def probe_importance(probe: nn.Linear, features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Signed importance [C, L, H]: mean over samples of class c of mean_dims(∂logit_c/∂head ⊙ head)."""
    contribution = probe_item_importance(probe, features, labels)  # [N, L, H]
    out = torch.zeros(n_classes, *contribution.shape[1:])
    for c in range(n_classes):
        if (labels == c).any():
            out[c] = contribution[labels == c].mean(0)
    return out
