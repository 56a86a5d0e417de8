"""One tensor-batch training loop for Experiment 1's models (no DataLoader, no per-epoch decoding)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..datasets.mnist_cifar import Split
from ..errors import MoeError, check_choice, check_positive
from ..runtime import make_generator
from ..runtime import progress as progress_bar
from .models import nll_loss

OPTIMIZERS = ("adam", "sgd")
EVAL_CHUNK = 8192


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every model of one run."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0

    def __post_init__(self):
        check_positive("EPOCHS", self.epochs)
        check_positive("BATCH_SIZE", self.batch_size)
        check_positive("LR", self.lr, integer=False)
        check_choice("OPTIMIZER", self.optimizer, OPTIMIZERS)


def make_optimizer(name: str, param_groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """``"adam"`` or ``"sgd"`` over parameter groups (a group may set its own ``lr``)."""
    check_choice("OPTIMIZER", name, OPTIMIZERS)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr, foreach=True)
    return torch.optim.SGD(param_groups, lr=lr, foreach=True)


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [batch, 1024] -> float32 in [0, 1]."""
    return images.float().div_(255.0)


@torch.no_grad()
def predict_log_probs(model: nn.Module, split: Split) -> torch.Tensor:
    """log Y for every row of a flat split, in chunks. -> [n, classes]."""
    model.eval()
    out = [
        model(as_float(split.images[i : i + EVAL_CHUNK]), split.is_first[i : i + EVAL_CHUNK])
        for i in range(0, len(split), EVAL_CHUNK)
    ]
    return torch.cat(out)


def accuracy(model: nn.Module, split: Split) -> float:
    """Fraction of rows whose arg-max class equals the label."""
    return evaluate(model, split)[0]


def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(accuracy, mean −log Y[label]) of a model on a whole flat split, from one forward pass."""
    log_y = predict_log_probs(model, split)  # [n, classes]
    return (log_y.argmax(-1) == split.labels).float().mean().item(), nll_loss(log_y, split.labels).item()


def default_param_groups(model: nn.Module) -> list[dict]:
    """One parameter group holding the model's trainable parameters."""
    return [{"params": [p for p in model.parameters() if p.requires_grad]}]


def train_step(
    models: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    is_first: torch.Tensor,
    extra_loss: Callable | None = None,
) -> torch.Tensor:
    """One optimiser step of every model on one batch; returns the per-model losses [models].

    The models' losses are summed and back-propagated once: their parameters are disjoint and Adam/SGD
    act per parameter, so each model trains exactly as it would alone, with less per-step overhead.
    """
    losses = []
    for name, model in models.items():
        loss = nll_loss(model(x, is_first), y)
        if extra_loss is not None:
            loss = loss + extra_loss(name, model, x, is_first)
        losses.append(loss)
    losses = torch.stack(losses)  # [models]
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    optimizer.step()
    return losses.detach()


def train_epoch(
    models: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    train: Split,
    batch_size: int,
    generator: torch.Generator,
    extra_loss: Callable | None = None,
) -> torch.Tensor:
    """One pass over a flat on-device split in index-slice batches of one random permutation; mean losses [models]."""
    device = train.images.device
    for model in models.values():
        model.train()
    order = torch.randperm(len(train), generator=generator, device=device)
    total = torch.zeros(len(models), device=device)
    for start in range(0, len(train), batch_size):
        index = order[start : start + batch_size]
        x, y, is_first = as_float(train.images[index]), train.labels[index], train.is_first[index]
        total += train_step(models, optimizer, x, y, is_first, extra_loss) * len(index)
    return total / len(train)


def build_optimizer(
    models: dict[str, nn.Module], config: TrainConfig, param_groups: dict[str, list[dict]] | None = None
) -> torch.optim.Optimizer:
    """One optimizer over every model's parameter groups (``param_groups`` overrides a model's groups)."""
    groups = []
    for name, model in models.items():
        groups += (param_groups or {}).get(name) or default_param_groups(model)
    return make_optimizer(config.optimizer, [g for g in groups if g["params"]], config.lr)


def train_models(
    models: dict[str, nn.Module],
    train: Split,
    test: Split,
    config: TrainConfig,
    *,
    param_groups: dict[str, list[dict]] | None = None,
    extra_loss: Callable[[str, nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train several models on one shared stream of batches; return accuracy per model, epoch and split.

    ``train``/``test`` are flat splits already on the training device (see ``Split.flat``). Every model
    sees the same batches (one permutation per epoch from a generator seeded with ``config.seed``).
    ``param_groups`` overrides a model's parameter groups (e.g. a separate gate learning rate; frozen
    parameters are simply left out); ``extra_loss`` adds a term (e.g. a load-balancing loss) given
    (name, model, x, is_first). Accuracy and ``loss`` (mean NLL) are measured on the whole of both splits after
    every epoch; ``running_train_loss`` is the mean training-batch loss during the epoch (extra terms included).
    """
    device = train.images.device
    for model in models.values():
        model.to(device)
    optimizer = build_optimizer(models, config, param_groups)
    generator = make_generator(config.seed, device)
    rows = []
    bar = progress_bar(range(1, config.epochs + 1), desc="epochs", disable=not progress)
    for epoch in bar:
        losses = train_epoch(models, optimizer, train, config.batch_size, generator, extra_loss).tolist()
        diverged = [name for name, loss in zip(models, losses) if not math.isfinite(loss)]
        if diverged:
            raise MoeError(
                f"training diverged: the loss of {', '.join(diverged)} is not finite in epoch {epoch} of {config.epochs} "
                f"(LR={config.lr:g}, OPTIMIZER={config.optimizer!r}); lower LR, nothing was written"
            )
        for (name, model), loss in zip(models.items(), losses):
            for split_name, split in (("train", train), ("test", test)):
                acc, nll = evaluate(model, split)
                rows.append(
                    {
                        "model": name,
                        "epoch": epoch,
                        "split": split_name,
                        "accuracy": acc,
                        "loss": nll,
                        "running_train_loss": loss,
                    }
                )
        bar.set_postfix({r["model"]: f"{r['accuracy']:.3f}" for r in rows[-2 * len(models) + 1 :: 2]})
    return pd.DataFrame(rows)
