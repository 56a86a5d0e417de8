"""Benchmark helper (not used by the notebooks): several seeds' dense token transformers trained as one stacked
model: each weight gets a leading seed axis and
every matmul becomes one batched matmul, so a step costs one Python pass for all seeds instead of one per seed.

The seeds stay independent: each seed's loss is its own batch's mean, their sum is differentiated (so each slice of
the gradient is that seed's own), gradients are clipped per seed, and AdamW is elementwise. The result equals
training each model alone up to float rounding (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch.nn import functional as F

from moe_utils.errors import MoeError, check_positive
from moe_utils.moe.transformer import TransformerModel

StackedLoss = Callable[[torch.Tensor, tuple], tuple[torch.Tensor, dict]]  # (logits, batch) -> ([S] losses, extras)


def check_stackable(models: list[TransformerModel]) -> None:
    """Stacking needs dense, token-input, LM-head models without dropout, all of one configuration."""
    if not models:
        raise MoeError("models=[] is not allowed; give at least one TransformerModel")
    first = models[0]
    c = first.config
    if c.ffn != "dense" or first.input_kind != "tokens" or first.head_kind != "lm" or c.dropout:
        raise MoeError("stacked training is not allowed here; it needs dense, token-input, LM-head models, no dropout")
    if any(m.config != c or m.head.weight.shape != first.head.weight.shape for m in models):
        raise MoeError("stacked training is not allowed here; every model must have the same configuration")


def stack_parameters(models: list[TransformerModel]) -> dict[str, torch.Tensor]:
    """{name: [seeds, ...] leaf tensor requiring grad}, one slice per model, in the models' order."""
    check_stackable(models)
    names = [name for name, _ in models[0].named_parameters()]
    states = [dict(m.named_parameters()) for m in models]
    return {n: torch.stack([s[n].detach() for s in states]).requires_grad_(True) for n in names}


@torch.no_grad()
def unstack_into(params: dict[str, torch.Tensor], models: list[TransformerModel]) -> None:
    """Copy each seed's slice of ``params`` into its model."""
    for i, model in enumerate(models):
        for name, value in model.named_parameters():
            value.copy_(params[name][i])


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Per-seed nn.Linear: x [S, N, in], weight [S, out, in], bias [S, out] -> [S, N, out]."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-seed nn.LayerNorm over the last axis: x [S, N, d], weight and bias [S, d]."""
    return torch.addcmul(bias.unsqueeze(1), F.layer_norm(x, x.shape[-1:]), weight.unsqueeze(1))


def stacked_logits(model: TransformerModel, params: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """The logits of every seed's model (``model`` gives the shapes) on its own tokens: [S, B, T] -> [S, B, T, V]."""
    c = model.config
    n_seeds, batch, seq = tokens.shape
    heads, d_head, d = c.n_heads, c.d_head, c.d_model
    rows = torch.arange(n_seeds, device=tokens.device).view(-1, 1, 1)  # [S, 1, 1]
    h = params["embed.weight"][rows, tokens] + params["pos"][:, None, :seq]  # [S, B, T, d]
    h = h.reshape(n_seeds, batch * seq, d)  # [S, N, d]
    for i in range(c.n_layers):
        p = lambda name, i=i: params[f"blocks.{i}.{name}"]  # noqa: E731
        a = layer_norm(h, p("norm1.weight"), p("norm1.bias"))
        qkv = linear(a, p("attn.qkv.weight"), p("attn.qkv.bias"))  # [S, N, 3d]
        qkv = qkv.view(n_seeds * batch, seq, 3, heads, d_head).permute(2, 0, 3, 1, 4)  # [3, S·B, H, T, d_head]
        att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=c.causal)  # [S·B, H, T, d_head]
        att = att.transpose(1, 2).reshape(n_seeds, batch * seq, d)  # [S, N, d]
        h = h + linear(att, p("attn.out.weight"), p("attn.out.bias"))
        f = layer_norm(h, p("norm2.weight"), p("norm2.bias"))
        gate, up = linear(f, p("ffn.w1.weight"), None), linear(f, p("ffn.w3.weight"), None)  # [S, N, d_ff]
        h = h + linear(F.silu(gate) * up, p("ffn.w2.weight"), None)
    h = layer_norm(h, params["norm.weight"], params["norm.bias"])
    return linear(h, params["head.weight"], params["head.bias"]).view(n_seeds, batch, seq, -1)  # [S, B, T, V]


def answer_losses(logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Each seed's cross-entropy of the answer byte at the last position ([S]) and its accuracy ([S], an extra)."""
    _, answers = batch  # [S, B]
    last = logits[:, :, -1]  # [S, B, V]
    losses = F.cross_entropy(last.flatten(0, 1), answers.flatten(), reduction="none").view(answers.shape).mean(1)
    return losses, {"acc": (last.argmax(-1) == answers).float().mean(1)}


def clip_per_seed_(params: dict[str, torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each seed's slice of the gradients on its own."""
    norms = torch.stack([p.grad.flatten(1).norm(dim=1) for p in params.values()]).norm(dim=0)  # [S]
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # [S]
    for p in params.values():
        p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))


def train_stacked(
    models: list[TransformerModel],
    next_batch: Callable[[int], tuple],
    loss_fn: StackedLoss,
    steps: int,
    lr: float = 1e-3,
    max_grad_norm: float | None = None,
    every: int = 0,
    on_every: Callable[[int], None] | None = None,
) -> list[pd.DataFrame]:
    """``steps`` AdamW steps of every model at once on ``next_batch(step)`` (each seed's batch stacked on axis 0);
    the models hold the trained weights afterwards, and when ``on_every(step)`` runs (after every ``every``-th step,
    e.g. to save checkpoints). One history per model: step, loss and the loss function's extras, as
    ``moe.training.train_steps`` logs them."""
    check_positive("steps", steps)
    check_positive("lr", lr, integer=False)
    params = stack_parameters(models)
    optimizer = torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=0.0)
    for model in models:
        model.train()
    rows: list[list[dict]] = [[] for _ in models]
    for step in range(steps):
        batch = next_batch(step)
        losses, extras = loss_fn(stacked_logits(models[0], params, batch[0]), batch)  # [S]
        if not torch.isfinite(losses).all():
            raise MoeError(f"training diverged: a seed's loss is not finite at step {step + 1} of {steps} (LR={lr:g})")
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # each seed's slice of the gradient is its own loss's
        if max_grad_norm is not None:
            clip_per_seed_(params, max_grad_norm)
        optimizer.step()
        values = {"loss": losses.detach(), **{k: v.detach() for k, v in extras.items()}}
        for i, history in enumerate(rows):
            history.append({"step": step, **{k: float(v[i]) for k, v in values.items()}})
        if on_every is not None and every and (step + 1) % every == 0:
            unstack_into(params, models)
            on_every(step)
    unstack_into(params, models)
    return [pd.DataFrame(history) for history in rows]
