"""Statistics of how a gate splits the data: activation rates per dataset and per class."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..datasets.mnist_cifar import Split
from .training import EVAL_CHUNK, as_float


@torch.no_grad()
def gate_weights(model: nn.Module, split: Split) -> torch.Tensor:
    """G(X) for every row of a flat split. -> [n, experts]."""
    model.eval()
    out = [
        model.gate_log_weights(as_float(split.images[i : i + EVAL_CHUNK]), split.is_first[i : i + EVAL_CHUNK]).exp()
        for i in range(0, len(split), EVAL_CHUNK)
    ]
    return torch.cat(out)


def activation_rates_from_weights(
    weights: torch.Tensor, is_first: torch.Tensor, names: tuple[str, str] = ("MNIST", "CIFAR")
) -> pd.DataFrame:
    """ActivationRate(i|D) = mean of G(X)_i over X in D, for the two datasets ``names``. weights: [n, experts]."""
    rows = []
    for dataset, mask in ((names[0], is_first), (names[1], ~is_first)):
        means = weights[mask].mean(0)  # [experts]
        rows += [{"dataset": dataset, "expert": i + 1, "rate": m.item()} for i, m in enumerate(means)]
    return pd.DataFrame(rows)


def activation_rates(
    models: dict[str, nn.Module], splits: dict[str, Split], names: tuple[str, str] | None = None
) -> pd.DataFrame:
    """Activation rates of every gated model on every split (long format: model, split, dataset, expert, rate);
    datasets named by ``names``, else by the splits' own names."""
    names = names or next(iter(splits.values())).dataset_names
    frames = []
    for name, model in models.items():
        if not hasattr(model, "gate_log_weights"):
            continue
        for split_name, split in splits.items():
            frame = activation_rates_from_weights(gate_weights(model, split).cpu(), split.is_first.cpu(), names)
            frames.append(frame.assign(model=name, split=split_name))
    return pd.concat(frames, ignore_index=True)[["model", "split", "dataset", "expert", "rate"]]


def rate_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Wide table like the source's Figure 2: rows (model, dataset), columns (split, expert)."""
    table = rates.pivot_table(index=["model", "dataset"], columns=["split", "expert"], values="rate", sort=False)
    return table.reindex(columns=sorted(table.columns, key=lambda c: (c[0] != "train", c[1])))


def class_activation_rates_from_weights(
    weights: torch.Tensor, labels: torch.Tensor, n_classes: int = 20
) -> torch.Tensor:
    """ActivationRate(i | class c) = mean of G(X)_i over rows of class c. weights: [n, experts] -> [classes,
    experts] (NaN rows for absent classes)."""
    sums = torch.zeros(n_classes, weights.shape[1], dtype=weights.dtype).index_add_(
        0, labels, weights
    )  # [classes, experts]
    counts = torch.bincount(labels, minlength=n_classes).to(weights.dtype)  # [classes]
    return sums / counts[:, None]


def class_activation_rates(models: dict[str, nn.Module], split: Split, class_names: list[str]) -> pd.DataFrame:
    """Per-class activation rates of every gated model (long format: model, class, class_name, expert, rate)."""
    rows = []
    for name, model in models.items():
        if not hasattr(model, "gate_log_weights"):
            continue
        table = class_activation_rates_from_weights(
            gate_weights(model, split).cpu(), split.labels.cpu(), len(class_names)
        )
        for c, rates in enumerate(table.tolist()):
            rows += [
                {"model": name, "class": c, "class_name": class_names[c], "expert": i + 1, "rate": r}
                for i, r in enumerate(rates)
            ]
    return pd.DataFrame(rows)


def majority_share(rates: pd.DataFrame) -> pd.DataFrame:
    """How hard a split is: the largest activation rate over experts (the majority expert's share) per dataset.

    ``rates`` is long format with columns ``expert`` and ``rate``; every other column except these is kept as a key.
    """
    keys = [c for c in rates.columns if c not in ("expert", "rate")]
    grouped = rates.groupby(keys, sort=False)["rate"]
    return (
        grouped.max()
        .rename("majority_share")
        .reset_index()
        .merge(rates.loc[grouped.idxmax(), keys + ["expert"]].rename(columns={"expert": "majority_expert"}), on=keys)
    )


def align_experts(rates: pd.DataFrame, by: tuple[str, str | None] = ("train", None)) -> pd.DataFrame:
    """Relabel interchangeable experts: expert 1 is the one with the largest share of ``by`` = (split, dataset), and so on.

    The dataset None means the first dataset of the table (``activation_rates`` lists the first dataset first).

    ``rates`` is long format (…, split, dataset, expert, rate); experts are ranked separately for every combination
    of the other columns (e.g. model and seed). Ties keep the original order.
    """
    columns = list(rates.columns)
    rates = rates.assign(_all=0)  # a constant key, so that a table with no other columns is one group
    keys = [c for c in rates.columns if c not in ("split", "dataset", "expert", "rate")]
    split, dataset = by
    dataset = rates["dataset"].iloc[0] if dataset is None else dataset
    ref = rates[(rates["split"] == split) & (rates["dataset"] == dataset)].sort_values(keys + ["expert"])
    ref = ref.assign(new_expert=ref.groupby(keys, sort=False)["rate"].rank(method="first", ascending=False).astype(int))
    # rank(method="first") breaks ties by position: equal rates keep their original order
    mapping = ref[keys + ["expert", "new_expert"]]
    out = rates.merge(mapping, on=keys + ["expert"], how="left")
    return out.assign(expert=out["new_expert"])[columns]
