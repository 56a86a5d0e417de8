"""Attention-head importance of Hugging Face causal LMs (Llama, Qwen2, GPT-NeoX): per-head outputs at the input of
the attention output projection, a multiplicative head mask applied there, the mask gradient and the task probe."""

from __future__ import annotations

import contextlib

import torch
from torch.nn import functional as F

from ..errors import MoeError
from .routing import decoder_layers


def output_projections(model) -> list[torch.nn.Linear]:
    """Per decoder layer, the attention output projection (``self_attn.o_proj``, GPT-NeoX ``attention.dense``)."""
    found = []
    for layer in decoder_layers(model):
        attention = getattr(layer, "self_attn", None) or getattr(layer, "attention", None)
        projection = getattr(attention, "o_proj", None) or getattr(attention, "dense", None)
        if projection is None:
            raise MoeError(
                f"{type(model).__name__} has no attention output projection (o_proj / dense) in a decoder layer"
            )
        found.append(projection)
    return found


def head_shape(model) -> tuple[int, int]:
    """(layers, heads) of the model's attention."""
    return len(decoder_layers(model)), int(model.config.num_attention_heads)


@contextlib.contextmanager
def frozen_parameters(model):
    """Parameters do not require gradients while active (the analyses need only the head mask's), then restored."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def head_mask_hooks(model, mask: torch.Tensor, record: list):
    """While active, each projection's input [B, S, H·d] is multiplied by ``mask[layer]`` [H]; the masked per-head
    outputs [B, S, H, d] go to ``record`` (with their unmasked values, for gradient × activation)."""
    hooks = []
    for index, projection in enumerate(output_projections(model)):

        def pre_hook(module, args, index=index):
            x = args[0]
            heads = x.view(*x.shape[:-1], mask.shape[1], -1)  # [B, S, H, d]
            masked = heads * mask[index].to(device=heads.device, dtype=heads.dtype).view(
                1, 1, -1, 1
            )  # the mask may live elsewhere
            if masked.requires_grad:
                masked.retain_grad()
            record.append((heads, masked))
            return (masked.reshape(x.shape), *args[1:])

        hooks.append(projection.register_forward_pre_hook(pre_hook))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def encode(tokenizer, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded input ids and attention mask, so every prompt ends at the last position."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)


def answer_ids(tokenizer, answers: list[str]) -> torch.Tensor:
    """The first token of each answer (the answers of the task families are one character)."""
    return torch.tensor([tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in answers], dtype=torch.long)


def last_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token logits at the last position [B, vocab]."""
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    logits = out.logits[:, -1]
    return logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least (bf16 models), float64 kept


def mask_gradients(
    model, tokenizer, prompts: list[str], answers: list[str], mask: torch.Tensor | None = None, batch_size: int = 16
) -> torch.Tensor:
    """Per prompt, ∂L/∂m for the head mask m (all ones unless given), L = answer cross-entropy. -> [N, L, H].

    Computed exactly per prompt from one batched backward: ∂L_b/∂m_h = Σ_{s,d} ∂L/∂(m_h a_h) · a_h for prompt b.
    """
    layers, heads = head_shape(model)
    mask = (torch.ones(layers, heads) if mask is None else mask.detach().float()).requires_grad_(True)
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[start : start + batch_size])
        target = answer_ids(tokenizer, answers[start : start + batch_size])
        record: list = []
        with frozen_parameters(model), head_mask_hooks(model, mask, record), torch.enable_grad():
            loss = F.cross_entropy(
                last_logits(model, batch), target.to(next(model.parameters()).device), reduction="sum"
            )
            loss.backward()
        out.append(
            torch.stack([(masked.grad * raw).sum((1, 3)).detach() for raw, masked in record], 1).cpu()
        )  # [b, L, H]
        model.zero_grad(set_to_none=True)
    return torch.cat(out)


@torch.no_grad()
def last_position_heads(
    model, tokenizer, prompts: list[str], mask: torch.Tensor | None = None, batch_size: int = 32
) -> torch.Tensor:
    """Every (masked) head's output at the last position, [N, layers, heads, d_head]: the task probe's features."""
    layers, heads = head_shape(model)
    mask = torch.ones(layers, heads) if mask is None else mask
    out = []
    for start in range(0, len(prompts), batch_size):
        record: list = []
        with head_mask_hooks(model, mask, record):
            last_logits(model, encode(tokenizer, prompts[start : start + batch_size]))
        out.append(torch.stack([masked[:, -1].float().cpu() for _, masked in record], 1))
    return torch.cat(out)


def mask_gradient_importance(
    model, tokenizer, prompts: list[str], answers: list[str], tasks: torch.Tensor, n_tasks: int
) -> torch.Tensor:
    """Michel et al.'s I_h = E_x |∂L(x)/∂m_h| per task, [tasks, layers, heads] (notebook 06's layout)."""
    grads = mask_gradients(model, tokenizer, prompts, answers).abs()  # [N, L, H]
    return torch.stack([grads[tasks == c].mean(0) for c in range(n_tasks)])
