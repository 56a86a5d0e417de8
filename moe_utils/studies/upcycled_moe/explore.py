"""Notebook 09's explorer: one layer's relative expert load per domain for a method, seed and stage, and a typed
text's tokens coloured by the expert the saved checkpoint (``from_pretrained``) routes each to."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap

from ...hf.routing import capture_routing
from ...io import paths
from ...io.explorer import check_choices, explore
from .plots import DOMAIN_LABELS
from .settings import METHOD_LABELS, METHODS
from .tables import UpcycledTables

DEFAULT_TEXT = "The river flows north. def area(r): return 3.14 * r * r  # Let x = 4 + 7. What is x? 11"
MAX_TOKENS = 64  # tokens of the typed text routed and drawn


def explore_tables(folder: Path | None = None) -> pd.DataFrame:
    """The relative load of every model before and after training (``09_expert_load.csv``)."""
    return UpcycledTables.load(folder or paths.figures_dir()).read_back("expert_load")


def controls(load: pd.DataFrame, with_text: bool = False) -> dict[str, list | str]:
    """Method, seed, stage, layer (numbered from 1, as in the figures), and the text box when checkpoints are given."""
    options = {
        "method": [METHOD_LABELS[m] for m in METHODS],
        "seed": [int(s) for s in sorted(load.seed.unique())],
        "stage": ["trained", "init"],
        "layer": [int(v) for v in sorted(load.layer.unique())],
    }
    return {**options, "text": DEFAULT_TEXT} if with_text else options


def method_key(label: str) -> str:
    """The method's table name from its label ("Aux-Loss-Free" -> "aux_free")."""
    return next(m for m in METHODS if METHOD_LABELS[m] == label)


def draw_load(ax, load: pd.DataFrame, method: str, seed: int, stage: str, layer: int) -> None:
    """Relative load of each expert of one layer, one bar group per domain; 1 = balanced."""
    part = load[
        (load.method == method_key(method)) & (load.seed == seed) & (load.stage == stage) & (load.layer == layer)
    ]
    domains = list(dict.fromkeys(part.domain))
    width = 0.8 / max(1, len(domains))
    for i, domain in enumerate(domains):
        rows = part[part.domain == domain].sort_values("expert")
        ax.bar(
            rows.expert + (i - (len(domains) - 1) / 2) * width, rows.relative_load, width, label=DOMAIN_LABELS[domain]
        )
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xticks(sorted(part.expert.unique()))
    ax.set(xlabel="expert", ylabel="relative load (1 = balanced)")
    ax.set_title(f"{method}, seed {seed}, {stage}, layer {layer}", fontsize=10)
    ax.legend(fontsize=8)


@torch.no_grad()
def draw_text(ax, model, tokenizer, text: str, layer: int) -> None:
    """The text's tokens in a row-wrapped grid, each coloured by its first-choice expert at ``layer`` (from 1)."""
    ids = tokenizer(text or " ", add_special_tokens=False)["input_ids"][:MAX_TOKENS]
    routing = {r.layer + 1: r for r in capture_routing(model, torch.tensor([ids]))}
    experts = routing[layer].indices[:, 0].numpy()  # [tokens]
    n_experts = routing[layer].logits.shape[-1]
    columns = 8
    rows = -(-len(ids) // columns)
    grid = np.full(rows * columns, np.nan)
    grid[: len(experts)] = experts
    colours = ListedColormap(plt.get_cmap("tab10").colors[:n_experts])
    ax.imshow(grid.reshape(rows, columns), cmap=colours, vmin=-0.5, vmax=n_experts - 0.5, aspect="auto")
    for i, token in enumerate(ids):
        ax.text(
            i % columns, i // columns, repr(tokenizer.decode([token]))[1:-1][:10], ha="center", va="center", fontsize=7
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"the text's tokens at layer {layer}, coloured by first-choice expert (1-{n_experts})", fontsize=9)


def load_view(load, method: str, seed: int, stage: str, layer: int, checkpoints=None, text=None) -> plt.Figure:
    """Relative load per expert and domain at one layer; with ``checkpoints`` ({method label: (model, tokenizer)})
    and ``text``: the text's tokens coloured by the expert that method's saved first-seed model picks."""
    check_choices(controls(load), dict(method=method, seed=seed, stage=stage, layer=layer))
    if checkpoints is None or text is None:
        fig, ax = plt.subplots(figsize=(7.5, 3.4))
        draw_load(ax, load, method, seed, stage, layer)
    else:
        fig, (ax, below) = plt.subplots(2, 1, figsize=(8, 7), height_ratios=[1, 1.2])
        draw_load(ax, load, method, seed, stage, layer)
        draw_text(below, *checkpoints[method], text, layer)
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    line = (
        f"Bars of the relative load of each expert at layer {choices['layer']} per domain, {choices['method']}, "
        f"seed {choices['seed']}, {choices['stage']}; 1 is balanced."
    )
    if "text" in choices:
        line += f" Below, the tokens of {choices['text'][:40]!r}… coloured by their first-choice expert."
    return line


def saved_checkpoints(tables: UpcycledTables) -> dict:
    """{method label: (model, tokenizer)} of the first seed's saved checkpoints, or {} when any is missing."""
    from ...hf.loading import load_causal_lm

    checks = tables.checkpoints
    if checks is None or checks.empty:
        return {}
    found = {}
    for _, row in checks.iterrows():
        folder = Path(row["checkpoint"])
        folder = folder if folder.is_absolute() else paths.REPO_ROOT / folder
        if not folder.exists():
            return {}
        with warnings.catch_warnings():  # the empty shared-expert MLP (none here) warns at init
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            found[METHOD_LABELS[row["method"]]] = load_causal_lm(str(folder), dtype="float32", device="cpu")
    return found


def explorer(folder: Path | None = None):
    """Notebook 09's explorer on the tables in ``folder`` (default: this run's figures folder), with a text box
    routed by the saved checkpoints when they are there (else the bars alone, one line)."""
    tables = UpcycledTables.load(folder or paths.figures_dir())
    load = explore_tables(folder)
    checkpoints = saved_checkpoints(tables) or None
    if checkpoints is None:
        print("no saved checkpoints for this run (run the notebook once): the load bars alone")
    view = lambda **c: load_view(load, checkpoints=checkpoints, **c)  # noqa: E731
    return explore(view, controls(load, with_text=checkpoints is not None), alt_text)
