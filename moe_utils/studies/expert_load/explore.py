"""Notebook 05's explorer: one layer's relative expert load for one domain (both methods, either shape), and a typed
text's bytes coloured by the expert the first seed's trained model routes each to."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap

from ...datasets.corpora import BYTE_VOCAB_SIZE
from ...io import paths
from ...io.explorer import check_choices, explore
from ...io.trained import load_result
from ...measures import hooks
from ...moe.transformer import TransformerModel
from .job import expert_load_job
from .method import DOMAIN_LABELS, METHOD_LABELS
from .settings import ExpertLoadSettings
from .tables import ExpertLoadTables

SHAPES = {"standard": "expert_load", "fine-grained": "fine_load"}  # shape -> its table in ExpertLoadTables
DEFAULT_TEXT = "The river flows north. def area(r): return 3.14 * r * r  # Let x = 4 + 7. What is x? 11"
COLUMNS = 48  # bytes per row of the text view


def explore_tables(folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """The first seed's relative load per shape (``05_expert_load.csv``, ``05_expert_load_fine.csv`` when run)."""
    saved = ExpertLoadTables.load(folder or paths.figures_dir())
    shapes = {shape: getattr(saved, key) for shape, key in SHAPES.items()}
    return {shape: shown(load) for shape, load in shapes.items() if load is not None}


def shown(load: pd.DataFrame) -> pd.DataFrame:
    """The load table with the names the figures use ("Aux-Loss-Free", "DM Mathematics"), for the controls."""
    return load.assign(method=load["method"].map(METHOD_LABELS), domain=load["domain"].map(DOMAIN_LABELS))


def kept_models(settings: ExpertLoadSettings, log=print) -> dict[tuple[str, str], TransformerModel]:
    """The first seed's trained models kept in ``data/trained/`` for these settings and code, keyed by (shape,
    method as the controls show it), in eval mode; {} unless every one is kept (the notebook, run once, keeps them)."""
    keep, models = settings.kept_runs(), {}
    for shape, method in settings.runs:
        job = dict(settings=settings, seed=settings.seed, label=shape, method=method)  # as run() names it
        found = load_result(settings.NOTEBOOK, keep.key(expert_load_job, job), log)
        if found is None:
            return {}
        model = TransformerModel(settings.config(shape, method), "tokens", BYTE_VOCAB_SIZE, head="lm", seed=0)
        model.load_state_dict(found[0].states["model"])
        models[(shape, METHOD_LABELS[method])] = model.eval()
    return models


def controls(tables: dict, with_text: bool = False) -> dict[str, list | str]:
    """Method, shape, layer (numbered from 1, as in the figures), domain, and the text box when models are given."""
    load = tables["standard"]
    options = {
        "method": list(dict.fromkeys(load["method"])),
        "shape": list(tables),
        "layer": [int(v) for v in sorted(load["layer"].unique())],
        "domain": list(dict.fromkeys(load["domain"])),
    }
    return {**options, "text": DEFAULT_TEXT} if with_text else options


@torch.no_grad()
def routed_bytes(model: TransformerModel, text: str, layer: int) -> tuple[bytes, np.ndarray]:
    """The text's UTF-8 bytes (at most the model's context) and each byte's first-choice expert at ``layer`` (from 1)."""
    data = text.encode("utf-8")[: model.config.max_len] or b" "
    with hooks.record(model.routers()) as seen:
        model(torch.tensor(list(data), dtype=torch.long)[None])  # [1, S]
    return data, seen.output(layer - 1).topk_idx[0, :, 0].numpy()  # [S]


def draw_load(ax, tables: dict, method: str, shape: str, layer: int, domain: str) -> None:
    """Relative load of each expert of one layer for one domain, the chosen method filled, the other outlined."""
    load = tables[shape]
    part = load[(load["layer"] == layer) & (load["domain"] == domain)]
    methods = list(dict.fromkeys(part["method"]))
    width = 0.8 / len(methods)
    for i, name in enumerate(methods):
        rows = part[part["method"] == name].sort_values("expert")
        x = rows["expert"].to_numpy() + (i - (len(methods) - 1) / 2) * width
        chosen = name == method
        ax.bar(x, rows["relative_load"], width, label=name, color="C0" if chosen else "none",
               edgecolor="C0" if chosen else "grey", lw=1 if chosen else 1.2, ls="-" if chosen else "--")  # fmt: skip
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    rows = part[part["method"] == method]["relative_load"].to_numpy()
    maxvio = float(rows.max() - 1) if len(rows) else float("nan")  # relative load has mean 1: MaxVio = max − 1
    n_experts = int(part["expert"].max())
    ax.set_xticks(np.arange(1, n_experts + 1, 1 if n_experts <= 16 else 4))  # readable at any expert count
    ax.set(xlabel="expert", ylabel="relative load (1 = balanced)")
    ax.set_title(f"{shape} shape, layer {layer}, {domain}: {method} (filled), max violation {maxvio:.2f}", fontsize=10)
    ax.legend(fontsize=8)


def draw_text(ax, model: TransformerModel, text: str, layer: int, title: str) -> None:
    """The text's bytes in a grid, each cell coloured by its first-choice expert at ``layer``."""
    data, experts = routed_bytes(model, text, layer)
    n_experts = model.config.router.n_experts
    rows = -(-len(data) // COLUMNS)
    grid = np.full(rows * COLUMNS, np.nan)
    grid[: len(experts)] = experts
    colours = ListedColormap(plt.get_cmap("tab20" if n_experts > 10 else "tab10").colors[:n_experts])
    ax.imshow(grid.reshape(rows, COLUMNS), cmap=colours, vmin=-0.5, vmax=n_experts - 0.5, aspect="auto")
    for i, byte in enumerate(data):
        char = chr(byte) if 32 < byte < 127 else "·"
        ax.text(i % COLUMNS, i // COLUMNS, char, ha="center", va="center", fontsize=8, family="monospace")
    ax.set_xticks([])
    ax.set_yticks([])
    used = ", ".join(f"{e + 1}: {n}" for e, n in zip(*np.unique(experts, return_counts=True)))
    ax.set_title(f"{title}; bytes per expert (1-{n_experts}) {used}", fontsize=9)


def load_view(tables: dict, method: str, shape: str, layer: int, domain: str, models=None, text=None) -> plt.Figure:
    """Relative load (tokens routed / balanced share) of each expert of one layer for one domain: the chosen method
    filled, the other method outlined; 1 = balanced. With ``models`` and ``text``: the text's bytes coloured by the
    expert the first seed's model (``shape``, ``method``) sends each to at that layer. Experts are numbered from 1."""
    check_choices(controls(tables), dict(method=method, shape=shape, layer=layer, domain=domain))
    if text is not None:
        check_choices({"text": DEFAULT_TEXT}, {"text": text})
    if models is None or text is None:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        draw_load(ax, tables, method, shape, layer, domain)
    else:
        fig, (ax, below) = plt.subplots(2, 1, figsize=(8, 6.2), height_ratios=[1.3, 1])
        draw_load(ax, tables, method, shape, layer, domain)
        draw_text(below, models[(shape, method)], text, layer, f"the text at layer {layer}, {shape} · {method}")
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    line = (
        f"Bars of the relative load of each expert at layer {choices['layer']} of the {choices['shape']} shape for "
        f"{choices['domain']} text, {choices['method']} filled and the other method outlined; 1 is balanced."
    )
    if "text" in choices:
        line += f" Below, the bytes of {choices['text'][:40]!r}… coloured by their first-choice expert."
    return line


def explorer(settings: ExpertLoadSettings, folder: Path | None = None):
    """Notebook 05's explorer: the load tables in ``folder`` (default: this run's figures folder), and a text box
    routed by the first seed's trained models when they are kept for ``settings`` (else the bars alone, one line)."""
    load = explore_tables(folder)
    models = kept_models(settings) or None
    if models is None:
        print("no trained models kept for these settings yet (run the notebook once): the load bars alone")
    view = lambda **c: load_view(load, models=models, **c)  # noqa: E731
    return explore(view, controls(load, with_text=models is not None), alt_text)
