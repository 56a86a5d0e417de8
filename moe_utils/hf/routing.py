"""Routing of Hugging Face MoE models, captured by hooks on each layer's router exactly as the model chose it.

In transformers 5, Mixtral, OLMoE, Qwen2-MoE, Qwen3-MoE and DeepSeek-V3 all keep their router as ``layer.mlp.gate``,
whose forward returns ``(router_logits, top_k_weights, top_k_indices)`` (DeepSeek-V3: top-k of sigmoid scores plus
the correction bias, within the best groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ..errors import MoeError
from ..measures.routing import expert_counts, jaccard, max_violation, relative_noise, selection_sets


@dataclass
class LayerRouting:
    """What one layer's router saw and chose for a batch of tokens."""

    layer: int  # decoder layer index
    router_input: torch.Tensor  # [tokens, d_model]
    logits: torch.Tensor  # [tokens, experts]
    weights: torch.Tensor  # [tokens, k]
    indices: torch.Tensor  # [tokens, k]


def decoder_layers(model) -> list:
    """The decoder layers of a Hugging Face causal LM (``model.model.layers`` or ``model.gpt_neox.layers``)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise MoeError(f"{type(model).__name__} has no decoder layers this project knows how to find")
    return list(layers)


def routers(model) -> list[tuple[int, torch.nn.Module]]:
    """(layer index, router module) of every MoE layer; a one-line MoeError for a model without routers."""
    found = [
        (i, layer.mlp.gate)
        for i, layer in enumerate(decoder_layers(model))
        if hasattr(getattr(layer, "mlp", None), "gate") and hasattr(layer.mlp.gate, "top_k")
    ]
    if not found:
        raise MoeError(
            f"{type(model).__name__} has no MoE routers (layer.mlp.gate); expert load and routing stability need an MoE model"
        )
    return found


@torch.no_grad()
def capture_routing(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> list[LayerRouting]:
    """One forward pass; per MoE layer, the router's input and its logits, weights and indices for every token."""
    captured, hooks = {}, []
    for index, gate in routers(model):

        def hook(module, args, output, index=index):
            x = args[0].reshape(-1, args[0].shape[-1])
            captured[index] = LayerRouting(
                index, x.detach(), output[0].detach(), output[1].detach(), output[2].detach()
            )

        hooks.append(gate.register_forward_hook(hook))
    try:
        device = next(model.parameters()).device
        model(
            input_ids=input_ids.to(device), attention_mask=None if attention_mask is None else attention_mask.to(device)
        )
    finally:
        for h in hooks:
            h.remove()
    return [captured[i] for i in sorted(captured)]


def token_windows(tokens: torch.Tensor, seq_len: int, max_tokens: int) -> torch.Tensor:
    """Non-overlapping windows [n, seq_len] of a 1-D token stream, at most ``max_tokens`` tokens in all."""
    n = min(len(tokens), max_tokens) // seq_len
    if n == 0:
        raise MoeError(f"need at least seq_len={seq_len} tokens; got {len(tokens)}")
    return tokens[: n * seq_len].view(n, seq_len)


def expert_load_table(
    model,
    tokenizer,
    texts: dict[str, str],
    *,
    seq_len: int = 256,
    max_tokens: int = 20_000,
    batch_size: int = 8,
    label: str = "model",
) -> pd.DataFrame:
    """Relative expert load per domain × layer × expert (notebook 05's schema) on texts tokenised by the model's tokenizer."""
    windows = {
        domain: token_windows(
            torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long), seq_len, max_tokens
        )
        for domain, text in texts.items()
    }
    return expert_load_on_windows(model, windows, batch_size=batch_size, label=label)


def expert_load_on_windows(
    model, windows: dict[str, torch.Tensor], *, batch_size: int = 8, label: str = "model"
) -> pd.DataFrame:
    """Relative expert load per domain × layer × expert of token ``windows`` [n, seq_len] per domain, routed in
    batches of ``batch_size`` windows."""
    rows = []
    for domain, w in windows.items():
        counts: dict[int, torch.Tensor] = {}
        for start in range(0, len(w), batch_size):
            for routing in capture_routing(model, w[start : start + batch_size]):
                n_experts = routing.logits.shape[-1]
                counts[routing.layer] = counts.get(
                    routing.layer, torch.zeros(n_experts, dtype=torch.long)
                ) + expert_counts(routing.indices.cpu(), n_experts)
        for layer, c in counts.items():
            k = int(c.sum()) // w.numel()
            balanced = k * w.numel() / len(c)
            rows += [
                {
                    "method": label,
                    "domain": domain,
                    "layer": layer + 1,  # decoder layers and experts numbered from 1, as in every table
                    "expert": e + 1,
                    "tokens_routed": int(c[e]),
                    "n_tokens": w.numel(),
                    "relative_load": float(c[e]) / balanced,
                }
                for e in range(len(c))
            ]
    return pd.DataFrame(rows)


def maxvio_table(load: pd.DataFrame) -> pd.DataFrame:
    """MaxVio_global per method and layer over all domains together (notebook 05's schema)."""
    rows = []
    for (method, layer), part in load.groupby(["method", "layer"], sort=False):
        rows.append(
            {
                "method": method,
                "layer": layer,
                "maxvio": max_violation(torch.tensor(part.groupby("expert")["tokens_routed"].sum().values)),
            }
        )
    return pd.DataFrame(rows)


@torch.no_grad()
def stability_table(
    model, input_ids: torch.Tensor, sigmas: list[float], seed: int = 0, label: str = "model"
) -> pd.DataFrame:
    """Jaccard of top-k sets per layer vs σ, with x' = x + ε at each router's input (notebook 04's schema).

    The router input is captured by a hook on the clean pass; each router then re-routes its own perturbed input
    (σ relative to each token's RMS), so every layer's sensitivity is measured on its own.
    """
    generator = torch.Generator().manual_seed(int(seed))
    gates = dict(routers(model))
    rows = []
    for routing in capture_routing(model, input_ids):
        gate, n_experts = gates[routing.layer], routing.logits.shape[-1]
        clean = selection_sets(routing.indices, n_experts)  # [tokens, E]
        for sigma in sigmas:
            noisy = relative_noise(routing.router_input, sigma, generator)
            j = jaccard(clean, selection_sets(gate(noisy)[2], n_experts))  # [tokens]
            rows.append(
                {
                    "layer": routing.layer + 1,  # numbered from 1
                    "dataset": "text",
                    "sigma": sigma,
                    "jaccard": float(j.mean()),
                    "changed": float((j < 1).float().mean()),
                    "tokens": j.numel(),
                    "run": label,
                }
            )
    return pd.DataFrame(rows)
