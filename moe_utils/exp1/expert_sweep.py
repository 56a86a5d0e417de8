"""More experts, richer experts: mixtures over a grid of expert count, expert kind and gate kind."""

from __future__ import annotations

import pandas as pd
from torch import nn

from .models import build_mixture


def sweep_name(n_experts: int, experts: str, gate: str) -> str:
    """The model key of one grid point, e.g. ``"4 mlp experts, linear gate"``."""
    return f"{n_experts} {experts} experts, {gate} gate"


def build_sweep(
    n_experts: list[int], expert_kinds: list[str], gates: list[str], init: str = "tf", *, seed: int, n_classes: int = 20
) -> tuple[dict[str, nn.Module], pd.DataFrame]:
    """Every (experts, expert kind, gate) mixture, each initialised from its own seed; plus a table of the grid."""
    models, rows = {}, []
    for i, (n, kind, gate) in enumerate((n, k, g) for k in expert_kinds for g in gates for n in n_experts):
        name = sweep_name(n, kind, gate)
        models[name] = build_mixture(gate, n, kind, init, seed=seed + i, n_classes=n_classes)
        rows.append(
            {
                "model": name,
                "n_experts": n,
                "experts": kind,
                "gate": gate,
                "parameters": sum(p.numel() for p in models[name].parameters()),
            }
        )
    return models, pd.DataFrame(rows)


def routing_summary(rates: pd.DataFrame) -> pd.DataFrame:
    """Per model, split and dataset: the majority expert's share and the number of experts getting ≥ 5 % of the dataset."""
    keys = ["model", "split", "dataset"]
    grouped = rates.groupby(keys, sort=False)["rate"]
    return pd.DataFrame(
        {"majority_share": grouped.max(), "experts_used": grouped.apply(lambda r: int((r >= 0.05).sum()))}
    ).reset_index()
