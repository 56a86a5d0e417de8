"""One way to read, and to scale, the activations of any torch model (ours and Hugging Face's): forward hooks.

``record`` keeps what chosen modules receive and return during the forwards inside a ``with`` block (in the spirit
of TransformerLens's hook points and transformers' output recorders); ``per_head`` views the input of attention
output projections per head, records it and can scale each head (a head mask). Hooks are removed on exit, so a
model outside these blocks is the plain model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import MoeError


@dataclass
class Recording:
    """What the hooked modules saw inside ``record``: per point, the first positional input and the output of each
    call, in call order."""

    inputs: dict[Hashable, list] = field(default_factory=dict)
    outputs: dict[Hashable, list] = field(default_factory=dict)

    def input(self, point: Hashable, call: int = 0):
        """The first positional input of call ``call`` (default: the first) of ``point``."""
        return self._get(self.inputs, point, call)

    def output(self, point: Hashable, call: int = 0):
        """The output of call ``call`` (default: the first) of ``point``."""
        return self._get(self.outputs, point, call)

    @staticmethod
    def _get(store: dict, point: Hashable, call: int):
        calls = store.get(point)
        if not calls:
            raise MoeError(f"nothing was recorded at {point!r}; run a forward inside record(...) first")
        return calls[call]


def named(points: Mapping[Hashable, nn.Module] | Sequence[nn.Module]) -> dict[Hashable, nn.Module]:
    """``points`` as a mapping: a sequence's modules are named by their index."""
    return dict(points) if isinstance(points, Mapping) else dict(enumerate(points))


@contextlib.contextmanager
def record(points: Mapping[Hashable, nn.Module] | Sequence[nn.Module]) -> Iterator[Recording]:
    """While active, every call of each module in ``points`` (name -> module, or a list named by index) appends its
    first positional input and its output to the yielded ``Recording``; the hooks are removed on exit. Tensors are
    kept as the graph holds them, so a loss on them backpropagates."""
    recording, hooks = Recording(), []
    for name, module in named(points).items():
        recording.inputs[name], recording.outputs[name] = [], []

        def hook(mod, args, output, name=name):
            recording.inputs[name].append(args[0] if args else None)
            recording.outputs[name].append(output)

        hooks.append(module.register_forward_hook(hook))
    try:
        yield recording
    finally:
        for h in hooks:
            h.remove()


@contextlib.contextmanager
def per_head(
    projections: Sequence[nn.Module],
    n_heads: int,
    mask: torch.Tensor | None = None,
    keep_grad: bool = False,
) -> Iterator[list[list[torch.Tensor]]]:
    """While active, the input [B, S, H·d] of each attention output projection (one per layer) is viewed per head
    [B, S, H, d], multiplied by ``mask[layer]`` [H] when a mask [layers, H] is given, recorded, and passed on in
    its place. Yields, per layer, the per-head tensors of each call; with ``keep_grad`` they keep their ``.grad``
    after a backward pass (∂L/∂head output, for gradient × activation and head-mask gradients)."""
    if mask is not None and tuple(mask.shape) != (len(projections), n_heads):
        raise MoeError(
            f"head_mask.shape={tuple(mask.shape)} is not allowed; it must be [n_layers, n_heads]="
            f"[{len(projections)}, {n_heads}]"
        )
    heads: list[list[torch.Tensor]] = [[] for _ in projections]
    hooks = []
    for layer, projection in enumerate(projections):

        def pre_hook(module, args, layer=layer):
            x = args[0]
            h = x.view(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)  # [B, S, H, d]
            if mask is not None:
                h = h * mask[layer].to(h.device, h.dtype).view(*([1] * (h.dim() - 2)), n_heads, 1)
            if keep_grad and h.requires_grad:
                h.retain_grad()
            heads[layer].append(h)
            return (h.reshape(x.shape), *args[1:])

        hooks.append(projection.register_forward_pre_hook(pre_hook))
    try:
        yield heads
    finally:
        for h in hooks:
            h.remove()
