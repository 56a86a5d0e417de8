"""A Hugging Face decoder run in two parts: the frozen lower layers once (their output cached), the upper layers
from that cache. Both parts run through the model's own ``forward`` on a slice of its layers, so the causal mask,
the rotary embedding and every matmul are those of one full forward: with the same batches, the same numbers."""

from __future__ import annotations

import contextlib

import torch

from ..errors import MoeError
from .routing import decoder_layers


@contextlib.contextmanager
def layer_slice(model, start: int, stop: int | None = None):
    """Within the block, ``model``'s decoder runs only its layers ``start:stop`` (a causal LM's ``model.model``)."""
    decoder = model.get_decoder()
    layers = decoder.layers
    if not 0 <= start < len(layers):
        raise MoeError(f"start={start!r} is not allowed; it must index one of the model's {len(layers)} layers")
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    try:
        yield decoder
    finally:
        decoder.layers = layers


def layer_output(model, input_ids: torch.Tensor, layer: int) -> torch.Tensor:
    """The residual stream after decoder layer ``layer`` − 1 (the input of layer ``layer``). ids [B, S] -> [B, S, d]."""
    if layer == 0:
        return model.get_input_embeddings()(input_ids)
    seen = {}
    last = decoder_layers(model)[layer - 1]
    handle = last.register_forward_hook(lambda module, args, output: seen.__setitem__("h", output))
    try:
        with layer_slice(model, 0, layer) as decoder:
            decoder(input_ids=input_ids, use_cache=False)
    finally:
        handle.remove()
    out = seen["h"]
    return out[0] if isinstance(out, tuple) else out


def logits_from(model, hidden: torch.Tensor, layer: int) -> torch.Tensor:
    """Next-token logits of ``model`` run from layer ``layer`` on its input ``hidden`` [B, S, d] -> [B, S, vocab]."""
    with layer_slice(model, layer) as decoder:
        out = decoder(inputs_embeds=hidden, use_cache=False).last_hidden_state  # [B, S, d], after the final norm
    return model.lm_head(out)


@torch.no_grad()
def cached_layer_output(model, windows: torch.Tensor, layer: int, batch_size: int = 8) -> torch.Tensor:
    """``layer_output`` of every window [n, S], in batches of ``batch_size`` -> [n, S, d] (float32, on the cpu)."""
    parts = [
        layer_output(model, windows[i : i + batch_size], layer).float().cpu()
        for i in range(0, len(windows), batch_size)
    ]
    return torch.cat(parts)
