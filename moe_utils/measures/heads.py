"""Head-importance measures on maps [..., layers, heads]: shares, similarity, depth, top/random/layer-matched head
masks, top-head overlap, the cross-task ablation summary, and residual updates relative to the residual norm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..errors import MoeError
from . import hooks


def importance_shares(importance: torch.Tensor) -> torch.Tensor:
    """|importance| divided by its sum over all heads of each map: [..., L, H] -> shares summing to 1 per map."""
    magnitude = importance.abs()
    total = magnitude.sum((-2, -1), keepdim=True)
    if (total == 0).any():
        raise MoeError("importance is zero for every head of some map; shares are undefined")
    return magnitude / total


def importance_table(shares: dict[str, torch.Tensor], names: list[str], column: str) -> pd.DataFrame:
    """Long table (method, ``column``, layer, head, share) of each method's shares [C, L, H], the C maps named by
    ``names``; layers and heads numbered from 1, as in every figure."""
    rows = []
    for method, s in shares.items():
        c, layers, heads = s.shape
        grid = np.stack(np.meshgrid(np.arange(c), np.arange(layers), np.arange(heads), indexing="ij"), -1)
        grid = grid.reshape(-1, 3)  # [C * L * H, (map, layer, head)]
        rows.append(
            pd.DataFrame(
                {
                    "method": method,
                    column: [names[i] for i in grid[:, 0]],
                    "layer": grid[:, 1] + 1,
                    "head": grid[:, 2] + 1,
                    "share": s.reshape(-1).numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def task_similarity(shares: torch.Tensor) -> torch.Tensor:
    """Cosine similarity [C, C] between the flattened importance maps of shares [C, L, H]."""
    flat = F.normalize(shares.flatten(1), dim=1)
    return flat @ flat.T


def depth_centroid(shares: torch.Tensor) -> torch.Tensor:
    """Share-weighted mean layer number (layers numbered from 1) per map, shares [C, L, H] -> [C]."""
    layer_share = shares.sum(-1)  # [C, L]
    return (layer_share * torch.arange(1, shares.shape[1] + 1)).sum(-1) / layer_share.sum(-1)


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


def layer_matched_random_mask(top_mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Head mask [L, H] masking, in every layer, as many random heads as ``top_mask`` [L, H] (0 = masked) masks there,
    drawn from the heads **outside** the top set (``ablation_topk.py``'s random control excludes the top heads); where
    a layer has fewer heads outside the top set than it needs, the rest come from outside the top set anywhere."""
    top = top_mask == 0  # [L, H]
    mask = torch.ones_like(top_mask, dtype=torch.float32)
    short = 0
    for layer, count in enumerate(top.sum(-1).tolist()):
        free = torch.nonzero(~top[layer]).flatten()
        picked = free[torch.randperm(len(free), generator=generator)[:count]]
        mask[layer, picked] = 0.0
        short += count - len(picked)
    if short:
        free = torch.nonzero((~top & (mask == 1)).flatten()).flatten()
        if len(free) < short:
            raise MoeError(f"{int(top.sum())} top heads leave too few heads outside them for a random control")
        mask.view(-1)[free[torch.randperm(len(free), generator=generator)[:short]]] = 0.0
    return mask


def top_head_sets(shares: torch.Tensor, k: int) -> list[set[int]]:
    """Per map of shares [C, L, H], the flat indices (layer · H + head) of its ``k`` largest shares."""
    return [set(s.flatten().topk(k).indices.tolist()) for s in shares]


def top_head_overlap(shares: torch.Tensor, k: int) -> torch.Tensor:
    """[C, C] number of heads the top-``k`` sets of two maps share (diagonal = k)."""
    sets = top_head_sets(shares, k)
    return torch.tensor([[len(a & b) for b in sets] for a in sets])


def within_across_overlap(shares: torch.Tensor, groups: list[int], k: int) -> dict[int, tuple[float, float]]:
    """Maps [T, L, H] of T labels in ``groups`` (a group per label): per group of at least two labels, the mean Jaccard
    index of its labels' top-``k`` head sets pairwise (within) and against every other group's labels (across)."""
    sets = top_head_sets(shares, k)
    jaccard = [[len(a & b) / len(a | b) for b in sets] for a in sets]
    out = {}
    for g in sorted(set(groups)):
        own = [t for t, h in enumerate(groups) if h == g]
        other = [t for t, h in enumerate(groups) if h != g]
        if len(own) < 2:
            continue
        within = [jaccard[a][b] for i, a in enumerate(own) for b in own[i + 1 :]]
        across = [jaccard[a][b] for a in own for b in other]
        out[g] = (sum(within) / len(within), sum(across) / len(across) if across else float("nan"))
    return out


def specificity_summary(matrix: torch.Tensor) -> dict[str, float]:
    """Of a cross-task drop matrix [masked task, measured task]: mean diagonal, mean off-diagonal and their difference."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise MoeError(f"the cross-task matrix must be square with at least 2 tasks; got shape {tuple(matrix.shape)}")
    eye = torch.eye(len(matrix), dtype=torch.bool)
    diagonal, off = float(matrix[eye].mean()), float(matrix[~eye].mean())
    return {"diagonal": diagonal, "off-diagonal": off, "diagonal − off-diagonal": diagonal - off}


def mean_abs_by_task(values: torch.Tensor, tasks: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Mean |value| per task, values [N, L, H], tasks [N] -> [n_tasks, L, H] (Michel et al.'s I_h per task)."""
    out = torch.zeros(n_tasks, *values.shape[1:], dtype=values.dtype)
    out.index_add_(0, tasks, values.abs())
    return out / torch.bincount(tasks, minlength=n_tasks).clamp(min=1).to(values.dtype).view(-1, 1, 1)


def relative_residual_update(inputs: torch.Tensor, outputs: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """Mean over tokens of ‖layer output − layer input‖ / ‖layer input‖: inputs, outputs [..., d], valid [...] bool."""
    ratio = (outputs - inputs).float().norm(dim=-1) / inputs.float().norm(dim=-1).clamp_min(1e-12)  # [...]
    if valid is not None:
        ratio = ratio[valid]
    return float(ratio.mean())


def head_points(model) -> tuple[list, int]:
    """(attention output projections, heads per layer) of our ``TransformerModel``: where ``hooks.per_head`` reads
    and scales the heads."""
    return model.output_projections(), model.config.n_heads


def masked_heads(model, mask: torch.Tensor | None):
    """A context in which each head's output is scaled by ``mask`` [n_layers, n_heads] (None: unchanged)."""
    projections, n_heads = head_points(model)
    return hooks.per_head(projections, n_heads, mask=mask)


def last_head_outputs(
    model, tokens: torch.Tensor, head_mask: torch.Tensor | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Every head's output at the last position, [N, n_layers, n_heads, d_head], from an eval-mode forward."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            with masked_heads(model, head_mask) as heads:
                model(tokens[i : i + batch_size])
            out.append(torch.stack([calls[0][:, -1] for calls in heads], 1))  # [B, L, H, d_head]
    return torch.cat(out)


def head_mask_gradients(model, tokens: torch.Tensor, answers: torch.Tensor, loss_scale: float = 1.0) -> torch.Tensor:
    """Per-sample ∂L_b/∂m_h at m = 1 for the answer loss L_b (cross-entropy times ``loss_scale``), [B, L, H]
    (Σ over positions and dims of grad ⊙ head)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    projections, n_heads = head_points(model)
    with hooks.per_head(projections, n_heads, keep_grad=True) as heads:
        logits = model(tokens)[:, -1]  # [B, vocab]
    (loss_scale * F.cross_entropy(logits, answers, reduction="sum")).backward()
    grads = [(h.grad * h).sum((1, 3)) for h in (calls[0] for calls in heads)]  # L x [B, H]
    model.zero_grad(set_to_none=True)
    return torch.stack(grads, 1).detach()


def mask_gradient_importance(
    model, data, n_classes: int, batch_size: int = 256, loss_scale: float = 1.0
) -> torch.Tensor:
    """Michel et al. 2019 I_h = E_x |∂L(x)/∂m_h| per task, [C, L, H], over the examples of ``data`` (L: the answer's
    cross-entropy times ``loss_scale``); ``data`` has ``tokens`` [N, T], ``answers`` [N] and ``task`` [N]."""
    total, count = None, torch.zeros(n_classes)
    for i in range(0, len(data), batch_size):
        g = head_mask_gradients(
            model, data.tokens[i : i + batch_size], data.answers[i : i + batch_size], loss_scale
        ).abs()  # [B, L, H]
        task = data.task[i : i + batch_size]
        if total is None:
            total = torch.zeros(n_classes, *g.shape[1:])
        total.index_add_(0, task, g)
        count += torch.bincount(task, minlength=n_classes).float()
    return total / count.clamp(min=1).view(-1, 1, 1)
