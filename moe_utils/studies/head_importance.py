"""Attention-head importance: a task probe's gradient × activation (Cognitive Mirrors) and head-mask gradients (Michel et al. 2019)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..datasets.cognitive_tasks import TASKS, TaskSplit, accuracy_by_task
from ..errors import MoeError, check_positive
from ..runtime import make_generator

QUICK_SIZES = {"n_train": 200, "n_held_out": 60, "steps": 150, "probe_steps": 50, "n_seeds": 2}  # caps of the quick profile (tests)


def last_head_outputs(model, tokens: torch.Tensor, head_mask: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Every head's output at the last position, [N, n_layers, n_heads, d_head], from an eval-mode forward."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            model(tokens[i:i + batch_size], head_mask=head_mask, record=True)
            out.append(torch.stack([h[:, -1] for h in model.head_outputs()], 1))  # [B, L, H, d_head]
    return torch.cat(out)


def train_probe(features: torch.Tensor, labels: torch.Tensor, n_classes: int, steps: int = 300, lr: float = 1e-2,
                weight_decay: float = 1e-3, seed: int = 0) -> nn.Linear:
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


def probe_importance(probe: nn.Linear, features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Signed importance [C, L, H]: mean over samples of class c of mean_dims(∂logit_c/∂head ⊙ head)."""
    x = features.detach().clone().requires_grad_(True)  # [N, L, H, d_head]
    logits = probe(x.flatten(1))  # [N, C]
    logits.gather(1, labels[:, None]).sum().backward()  # each sample's own class logit
    contribution = (x.grad * x).mean(-1).detach()  # [N, L, H]
    out = torch.zeros(n_classes, *contribution.shape[1:])
    for c in range(n_classes):
        if (labels == c).any():
            out[c] = contribution[labels == c].mean(0)
    return out


def head_mask_gradients(model, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Per-sample ∂L_b/∂m_h at m = 1 for the answer loss L_b, [B, L, H] (Σ over positions and dims of grad ⊙ head)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    logits = model(tokens, record=True)[:, -1]  # [B, vocab]
    F.cross_entropy(logits, answers, reduction="sum").backward()
    grads = [(h.grad * h).sum((1, 3)) for h in model.head_outputs()]  # L x [B, H]
    model.zero_grad(set_to_none=True)
    return torch.stack(grads, 1).detach()


def mask_gradient_importance(model, data: TaskSplit, n_classes: int = len(TASKS), batch_size: int = 256) -> torch.Tensor:
    """Michel et al. 2019 I_h = E_x |∂L(x)/∂m_h| per task, [C, L, H], over the examples of ``data``."""
    total, count = None, torch.zeros(n_classes)
    for i in range(0, len(data), batch_size):
        g = head_mask_gradients(model, data.tokens[i:i + batch_size], data.answers[i:i + batch_size]).abs()  # [B, L, H]
        task = data.task[i:i + batch_size]
        if total is None:
            total = torch.zeros(n_classes, *g.shape[1:])
        total.index_add_(0, task, g)
        count += torch.bincount(task, minlength=n_classes).float()
    return total / count.clamp(min=1).view(-1, 1, 1)


def importance_shares(importance: torch.Tensor) -> torch.Tensor:
    """|importance| divided by its sum over all heads of each map: [..., L, H] -> shares summing to 1 per map."""
    magnitude = importance.abs()
    total = magnitude.sum((-2, -1), keepdim=True)
    if (total == 0).any():
        raise MoeError("importance is zero for every head of some map; shares are undefined")
    return magnitude / total


def importance_frame(shares: torch.Tensor, method: str) -> pd.DataFrame:
    """Long table (method, task, layer, head, share) of shares [C, L, H]."""
    c, l, h = shares.shape
    grid = np.stack(np.meshgrid(np.arange(c), np.arange(l), np.arange(h), indexing="ij"), -1).reshape(-1, 3)
    return pd.DataFrame({
        "method": method, "task": [TASKS[i] for i in grid[:, 0]], "layer": grid[:, 1], "head": grid[:, 2],
        "share": shares.reshape(-1).numpy(),
    })


def task_similarity(shares: torch.Tensor) -> torch.Tensor:
    """Cosine similarity [C, C] between the flattened importance maps of shares [C, L, H]."""
    flat = F.normalize(shares.flatten(1), dim=1)
    return flat @ flat.T


def depth_centroid(shares: torch.Tensor) -> torch.Tensor:
    """Share-weighted mean layer index per map, shares [C, L, H] -> [C]."""
    layer_share = shares.sum(-1)  # [C, L]
    return (layer_share * torch.arange(shares.shape[1])).sum(-1) / layer_share.sum(-1)


def top_heads_mask(shares: torch.Tensor, k: int) -> torch.Tensor:
    """Head mask [L, H] with the ``k`` largest shares set to 0, all others 1."""
    mask = torch.ones(shares.numel())
    mask[shares.flatten().topk(k).indices] = 0.0
    return mask.view_as(shares)


def random_heads_mask(shape: tuple[int, int], k: int, generator: torch.Generator) -> torch.Tensor:
    """Head mask [L, H] with ``k`` heads drawn from ``generator`` set to 0."""
    mask = torch.ones(shape[0] * shape[1])
    mask[torch.randperm(mask.numel(), generator=generator)[:k]] = 0.0
    return mask.view(shape)


def ablation_table(model, held_out: TaskSplit, shares_by_method: dict[str, torch.Tensor], k: int, n_random: int = 5,
                   seed: int = 0) -> pd.DataFrame:
    """Held-out accuracy per task with its top-k heads (per method) or k random heads masked; one row per task/condition."""
    check_positive("k", k)
    base = accuracy_by_task(model, held_out)
    shape = next(iter(shares_by_method.values())).shape[1:]
    generator = make_generator(seed)
    rows = []
    random_acc = [accuracy_by_task(model, held_out, random_heads_mask(shape, k, generator)) for _ in range(n_random)]
    for c, task in enumerate(TASKS):
        data = held_out.of_task(c)
        conditions = {f"top-{k} ({m})": accuracy_by_task(model, data, top_heads_mask(s[c], k))[task] for m, s in shares_by_method.items()}
        conditions[f"random {k} (mean of {n_random})"] = float(np.mean([r[task] for r in random_acc]))
        for name, acc in conditions.items():
            rows.append({"task": task, "condition": name, "k": k, "accuracy": acc, "baseline": base[task], "drop": base[task] - acc})
    return pd.DataFrame(rows)
