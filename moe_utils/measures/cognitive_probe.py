"""The probe of *Cognitive Mirrors* as its code does it (github.com/sihuo-design/CognitiveMirrors, ``get_importance.py``
and ``ablation_topk.py`` at commit d4163f0): per-head features at the answer tokens with the layer's mean, an MLP probe
with one projection shared by every head, gradient × activation on the projections, the elbow cut of the ranked
importances, and random heads drawn outside the top set."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MoeError, check_positive

PROJECTION = 64  # the paper's shared per-head projection width
HIDDEN = 512  # the paper's classifier hidden width


def head_features(heads: torch.Tensor, tokens: list[int], layer_bias: bool = True) -> torch.Tensor:
    """One item's features (``extract_features`` with position "topk"): each head's output averaged over the answer
    tokens ``tokens``, with its layer's mean over heads appended. heads: [L, T, H, D] -> [L·H, 2D] (or [L·H, D])."""
    picked = [t for t in tokens if 0 <= t < heads.shape[1]]
    if not picked:
        raise MoeError(f"tokens={tokens!r} selects none of the item's {heads.shape[1]} positions")
    mean = heads[:, picked].mean(1)  # [L, H, D]
    if layer_bias:
        mean = torch.cat([mean, mean.mean(1, keepdim=True).expand_as(mean)], -1)  # [L, H, 2D]
    return mean.reshape(-1, mean.shape[-1])


class FeatureProbe(nn.Module):
    """The paper's ``FeatureLevelClassifier``: a projection shared by every head, then an MLP over all heads."""

    def __init__(self, input_dim: int, n_features: int, n_classes: int):
        super().__init__()
        self.feature_proj = nn.Linear(input_dim, PROJECTION)
        self.classifier = nn.Sequential(
            nn.Linear(PROJECTION * n_features, HIDDEN), nn.ReLU(), nn.Dropout(0.3), nn.Linear(HIDDEN, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, features, input_dim] -> logits [N, classes]."""
        return self.classifier(self.feature_proj(x).flatten(1))


def train_feature_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    epochs: int = 100,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
) -> FeatureProbe:
    """AdamW at the paper's rate, shuffled mini-batches, ``epochs`` passes; the probe in eval mode."""
    check_positive("epochs", epochs)
    torch.manual_seed(seed)  # the probe's initialisation and dropout
    probe = FeatureProbe(features.shape[-1], features.shape[1], n_classes)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        probe.train()
        for batch in torch.randperm(len(features), generator=generator).split(batch_size):
            loss = F.cross_entropy(probe(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return probe.eval()


def item_importance(probe: FeatureProbe, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each item's gradient × activation for its own label at the shared projections, mean_dims(∂logit_y/∂proj ⊙
    proj): [N, features] (their mean over a class is ``feature_importance``'s row)."""
    probe.eval()
    proj = probe.feature_proj(features).detach().requires_grad_(True)  # [N, features, 64]
    logits = probe.classifier(proj.flatten(1))  # [N, classes]; items do not interact in eval mode
    logits.gather(1, labels[:, None]).sum().backward()
    return (proj.grad * proj).mean(-1).detach()


def feature_importance(
    probe: FeatureProbe, features: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """``compute_feature_importance_per_label``: for each class c, the mean over its items of
    mean_dims(∂logit_c/∂proj ⊙ proj) at the shared projections. -> [classes, features] (0 for a class without items)."""
    per_item = item_importance(probe, features, labels)
    out = torch.zeros(n_classes, features.shape[1])
    for c in range(n_classes):
        if (labels == c).any():
            out[c] = per_item[labels == c].mean(0)
    return out


def elbow_index(values) -> int:
    """``find_elbow_point``: the index of the point farthest from the line joining the first and last points."""
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) < 2:
        raise MoeError(f"an elbow needs a curve of at least 2 points; got shape {y.shape}")
    x = np.arange(len(y), dtype=float)
    line = np.array([x[-1] - x[0], y[-1] - y[0]])
    line /= np.linalg.norm(line)
    vecs = np.stack([x - x[0], y - y[0]], 1)
    dists = np.linalg.norm(vecs - np.outer(vecs @ line, line), axis=1)
    return int(np.argmax(dists))


def random_heads_outside(
    top: list[int], n_layers: int, n_heads: int, generator: torch.Generator, layer_matched: bool = False
) -> list[int]:
    """As many heads (flat index layer · n_heads + head) as ``top``, drawn without replacement from the heads outside
    ``top`` (``ablation_topk.py``'s "randomk"); ``layer_matched`` draws each from its top head's layer instead, and
    from outside the top set anywhere once that layer has no head left outside it."""
    chosen, taken = [], set(top)
    everywhere = range(n_layers * n_heads)
    for head in top:
        free = []
        if layer_matched:
            layer = head // n_heads
            free = [h for h in range(layer * n_heads, (layer + 1) * n_heads) if h not in taken]
        if not free:
            free = [h for h in everywhere if h not in taken]
        if not free:
            raise MoeError(f"no head outside the top set is left to draw for head {head}; the top set is too large")
        pick = free[int(torch.randint(len(free), (1,), generator=generator))]
        chosen.append(pick)
        taken.add(pick)
    return chosen


def candidate_accuracy(scores: torch.Tensor, correct: torch.Tensor, n_candidates: torch.Tensor | None = None) -> float:
    """Accuracy over each item's own candidates: scores [N, C] (an item with fewer candidates pads with anything;
    ``n_candidates`` [N] says how many are real), correct [N] the right candidate's index."""
    scores = scores.clone()
    if n_candidates is not None:
        scores[torch.arange(scores.shape[1])[None] >= n_candidates[:, None]] = float("-inf")
    return float((scores.argmax(1) == correct).float().mean())
