"""Layer activation across training (notebook 07's analysis) over a list of saved checkpoints of one model."""
from __future__ import annotations

import pandas as pd
import torch

from ..measures.heads import importance_shares
from .heads import encode, mask_gradient_importance
from .loading import DENSE_ARCHITECTURES, load_causal_lm
from .routing import decoder_layers


@torch.no_grad()
def residual_updates(model, tokenizer, prompts: list[str]) -> torch.Tensor:
    """Mean |layer output − layer input| of the residual stream per decoder layer, [layers]."""
    stats, hooks = [], []
    for layer in decoder_layers(model):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            stats.append((out - args[0]).abs().float().mean().item())
        hooks.append(layer.register_forward_hook(hook))
    try:
        batch = encode(tokenizer, prompts)
        device = next(model.parameters()).device
        model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    finally:
        for h in hooks:
            h.remove()
    return torch.tensor(stats)


def layer_activation_table(checkpoints: list[tuple[str, str | None, str]], prompts: list[str], answers: list[str],
                           tasks: torch.Tensor, n_tasks: int, *, dtype: str = "auto", device: str = "auto") -> pd.DataFrame:
    """Per checkpoint (name or folder, revision, label) and layer: the head-importance share per head and the raw
    mean |∂L/∂m| (not rescaled per checkpoint), and the residual-update share per head and its raw value."""
    rows = []
    for name, revision, label in checkpoints:
        model, tokenizer = load_causal_lm(name, revision=revision, dtype=dtype, device=device,
                                          architectures=DENSE_ARCHITECTURES, purpose="layer activation across checkpoints")
        by_task = mask_gradient_importance(model, tokenizer, prompts, answers, tasks, n_tasks)  # [C, L, H]
        heads = by_task.shape[-1]
        share = importance_shares(by_task.mean(0))  # [L, H], sums to 1 over all heads
        update = residual_updates(model, tokenizer, prompts)  # [L]
        for layer in range(by_task.shape[1]):
            rows.append({"step": label, "layer": layer + 1, "importance share per head": float(share[layer].mean()),
                         "raw mean |head-mask gradient|": float(by_task[:, layer].mean()),
                         "residual update share per head": float(update[layer] / update.sum() / heads),
                         "raw mean |residual update|": float(update[layer])})
        del model
    return pd.DataFrame(rows)
