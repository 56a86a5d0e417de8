"""Routing measures: top-k selection sets, their Jaccard under noise, expert load and MaxVio."""

from __future__ import annotations

import torch

from ..errors import MoeError, check_nonnegative, check_positive


def selection_sets(topk_idx: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Binary expert-selection sets. topk_idx: [..., k] -> bool [..., experts]."""
    check_positive("n_experts", n_experts)
    if topk_idx.numel() and (int(topk_idx.min()) < 0 or int(topk_idx.max()) >= n_experts):
        raise MoeError(f"topk_idx has entries outside 0..{n_experts - 1}; they must index the {n_experts} experts")
    sets = torch.zeros(*topk_idx.shape[:-1], n_experts, dtype=torch.bool, device=topk_idx.device)
    return sets.scatter_(-1, topk_idx, True)


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Jaccard |a∩b| / |a∪b| of bool sets [..., experts] -> float [...]; 1 where both sets are empty."""
    if a.shape != b.shape:
        raise MoeError(f"set shapes {tuple(a.shape)} and {tuple(b.shape)} differ; they must match")
    a, b = a.bool(), b.bool()
    inter = (a & b).sum(-1).float()  # [...]
    union = (a | b).sum(-1).float()  # [...]
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def relative_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x + ε with ε ~ N(0, (σ·rms(x_t))² I) per token; rms over the last dim. x: [..., d] -> [..., d]."""
    check_nonnegative("sigma", sigma)
    if generator is None:
        raise MoeError("generator=None is not allowed; relative_noise needs a torch.Generator")
    rms = x.pow(2).mean(-1, keepdim=True).sqrt()  # [..., 1]
    # drawn on the generator's device, so a cpu generator also serves cuda inputs (same draws on both)
    z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)  # [..., d]
    return x + sigma * rms * z


def pooled_jaccard(means: torch.Tensor, tokens: torch.Tensor) -> float:
    """Token-weighted mean of per-group mean Jaccards: means [groups], tokens [groups] -> one number."""
    tokens = tokens.double()
    if float(tokens.sum()) <= 0:
        raise MoeError("pooled_jaccard needs at least one token")
    return float((means.double() * tokens).sum() / tokens.sum())


def expert_counts(topk_idx: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Integer count of (token, slot) assignments per expert. topk_idx: [..., k] -> [experts]."""
    return torch.bincount(topk_idx.reshape(-1), minlength=n_experts)


def max_violation(load: torch.Tensor) -> float:
    """MaxVio = (max_i load_i - mean load) / mean load (DeepSeek-V3's balance measure); 0 for a uniform load."""
    load = load.float()
    mean = load.mean()
    return float((load.max() - mean) / mean) if mean > 0 else 0.0


def relative_load(topk_idx: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Tokens routed to each expert / (K·T/N), the balanced load. topk_idx: [..., K] -> [experts]; mean is exactly 1."""
    check_positive("n_experts", n_experts)
    k = topk_idx.shape[-1]
    n_tokens = topk_idx.numel() // k
    if n_tokens == 0:
        raise MoeError("topk_idx holds no tokens; relative load needs at least one")
    counts = expert_counts(topk_idx, n_experts).double()  # [experts]
    return counts / (k * n_tokens / n_experts)
