"""A small AdamW training loop for TransformerModel (aux loss + aux-free bias updates) and atomic checkpoints."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from ..errors import MoeError, check_nonnegative, check_positive
from ..io.atomic import atomic_path
from ..io.cache_check import damage, record
from ..measures import hooks
from ..measures.routing import max_violation
from ..runtime import make_generator
from ..runtime import progress as progress_bar
from .transformer import TransformerConfig, TransformerModel

CHECKPOINT_FORMAT = "moe_utils.TransformerModel/2"  # 2: the config nests a RouterConfig

LossFn = Callable[[TransformerModel, Any, torch.Generator], "torch.Tensor | tuple[torch.Tensor, dict]"]


def routing_stats(routings: list) -> dict[str, float]:
    """MaxVio of every MoE layer's routing in one forward, keyed ``maxvio_<layer>``."""
    return {f"maxvio_{i}": max_violation(routing.load) for i, routing in enumerate(routings)}


def step_routings(recording, n_layers: int) -> list:
    """Each MoE layer's routing of the step's model forward: its router's first call (a loss may call a router
    again, e.g. on noisy input, after the forward)."""
    return [recording.output(i) for i in range(n_layers)]


def warmup_cosine(step: int, steps: int, warmup: int) -> float:
    """The learning-rate multiplier of optimizer step ``step`` (0-based) of ``steps``: linear warm-up over ``warmup``
    steps to 1, then a cosine decay that reaches exactly 0 at the last step."""
    check_positive("steps", steps)
    if not 0 <= warmup < steps:
        raise MoeError(f"warmup={warmup!r} is not allowed; it must be at least 0 and below steps={steps}")
    if step < warmup:
        return (step + 1) / warmup
    span = steps - 1 - warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / span)) if span > 0 else 0.0


def train_steps(
    model: TransformerModel,
    next_batch: Callable[[int], Any],
    loss_fn: LossFn,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    max_grad_norm: float | None = None,
    stop: Callable[[int], bool] | None = None,
    lr_schedule: Callable[[int], float] | None = None,
) -> pd.DataFrame:
    """Run ``steps`` AdamW steps on loss_fn(model, next_batch(step), generator) + the routers' aux loss, one row per
    step; fewer when ``stop(step)`` says so after a step.

    ``loss_fn`` returns the task loss, or (loss, {name: float}) to log extra columns. The generator (from ``seed``
    unless given) must drive the model's noise/dropout: pass it on as ``model(x, generator=generator)``.
    After each optimizer step aux-free routers update their bias from that step's load. ``lr_schedule(step)``, when
    given, multiplies LR at each step (e.g. ``warmup_cosine``) and adds the column ``lr``.
    Columns: step, loss (task), aux_loss, total, maxvio_<i> per MoE layer, and any extras.
    """
    check_positive("steps", steps)
    check_positive("lr", lr, integer=False)
    check_nonnegative("weight_decay", weight_decay)
    if generator is None:
        device = next(model.parameters()).device
        generator = make_generator(seed, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule) if lr_schedule is not None else None
    model.train()
    history = []
    bar = progress_bar(range(steps), desc="train", disable=not progress, leave=False)
    for step in bar:
        with hooks.record(model.routers()) as seen:
            out = loss_fn(model, next_batch(step), generator)
        loss, extras = out if isinstance(out, tuple) else (out, {})
        routings = step_routings(seen, len(model.moe_layers))
        aux = model.aux_loss(routings)
        total = loss + aux
        if not math.isfinite(total.item()):
            raise MoeError(
                f"training diverged: the loss is {total.item()} at step {step + 1} of {steps} (LR={lr:g}); "
                "lower LR (or the loss weights), nothing was written"
            )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        step_lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        model.update_router_biases(routings)
        row = {"step": step, "loss": loss.item(), "aux_loss": aux.item(), "total": total.item()}
        if scheduler is not None:
            row["lr"] = step_lr
        row.update(routing_stats(routings))
        row.update({k: float(v) for k, v in extras.items()})
        history.append(row)
        if on_step is not None:
            on_step(step, row)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if stop is not None and stop(step):
            break
    return pd.DataFrame(history)


def save_checkpoint(model: TransformerModel, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write the model's constructor arguments and state dict to ``path`` atomically (``extra``: plain data to keep)."""
    if not isinstance(model, TransformerModel):
        raise MoeError(f"model={type(model).__name__} is not allowed; it must be a TransformerModel")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "init_kwargs": model.init_kwargs,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    record(path)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> TransformerModel:
    """Rebuild a TransformerModel saved by save_checkpoint, bit-exactly, in eval mode (``model.checkpoint_extra`` set)."""
    reason = damage(path)
    if reason is not None:
        raise MoeError(f"checkpoint {path} is damaged ({reason}); train it again")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise MoeError(f"path={str(path)!r} is not allowed; it is not a {CHECKPOINT_FORMAT} checkpoint")
    kwargs = dict(payload["init_kwargs"])
    kwargs["config"] = TransformerConfig(**kwargs["config"])
    model = TransformerModel(**kwargs)
    model.load_state_dict(payload["state_dict"])
    model.checkpoint_extra = payload["extra"]
    return model.to(device).eval()
