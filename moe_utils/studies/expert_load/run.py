"""Notebook 05's study, settings -> run -> tables: every (shape, method, seed) model trained in parallel, routed on
held-out text, summarised over seeds and held-out documents."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...datasets.corpora import DomainCorpus
from ...measures.specialisation import document_bootstrap
from ...runtime import run_parallel
from ...stats import paired_margin
from .job import (
    domain_corpus,
    expert_load_job,
    seed_rows,
    stacked_counts,
)
from .method import METHODS, ffn_parameters, global_maxvio, specialisation_table, training_maxvio
from .settings import ExpertLoadSettings
from .tables import ExpertLoadTables

LOAD_COLUMNS = ["method", "domain", "layer", "expert", "tokens_routed", "n_tokens", "relative_load"]


def loss_table(settings: ExpertLoadSettings, corpus: DomainCorpus, first: dict) -> pd.DataFrame:
    """Held-out loss and bits per byte per method and domain, with the last 100 steps' training loss."""
    histories = {m: first[("standard", m)].history for m in METHODS}
    train_loss = pd.DataFrame(
        [
            {"method": m, "domain": d, "train_loss_last100": h[f"loss_{d}"].tail(100).mean()}
            for m, h in histories.items()
            for d in corpus.train
        ]
    )
    losses = pd.concat([first[("standard", m)].loss for m in METHODS], ignore_index=True)
    columns = ["method", "domain", "held_out_tokens", "held_out_loss", "bits_per_byte"]
    return losses[columns].merge(train_loss, on=["method", "domain"])


def maxvio_tables(settings: ExpertLoadSettings, first: dict, load: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(MaxVio per training batch and on held-out text, its summary per method) for the standard shape."""
    steps = settings.size("steps")
    train_mv = training_maxvio({m: first[("standard", m)].history for m in METHODS})
    held_mv = global_maxvio(load)
    maxvio = pd.concat(
        [train_mv.assign(kind="train_batch"), held_mv.assign(kind="held_out_global", step=steps)], ignore_index=True
    )
    summary = pd.DataFrame(
        {
            "train MaxVio_batch, first 100 steps": train_mv[train_mv["step"] < 100].groupby("method")["maxvio"].mean(),
            "train MaxVio_batch, last 100 steps": train_mv[train_mv["step"] >= steps - 100]
            .groupby("method")["maxvio"]
            .mean(),
            "held-out MaxVio_global (layer mean)": held_mv.groupby("method")["maxvio"].mean(),
        }
    )
    return maxvio[["method", "kind", "step", "layer", "maxvio"]], summary


def shape_table(settings: ExpertLoadSettings) -> pd.DataFrame:
    """Each shape's experts, width, top-k, shared experts and parameters per MoE layer (active and total experts',
    the router's)."""
    rows = []
    for label, shape in settings.shapes.items():
        config = settings.config(label, "aux_free")
        rows.append(
            {
                "shape": label,
                "routed experts": shape["n_experts"],
                "top-k": shape["top_k"],
                "expert width": config.d_expert,
                "shared experts": config.n_shared_experts,
                "alpha (aux_loss)": settings.config(label, "aux_loss").router.aux_loss_alpha,
                "gamma (aux_free)": config.router.bias_update_rate,
                **{f"{k} parameters per layer": v for k, v in ffn_parameters(config).items()},
            }
        )
    return pd.DataFrame(rows)


def grid_table(settings: ExpertLoadSettings, rows: pd.DataFrame) -> pd.DataFrame:
    """The α × γ grid at SEED, per shape: aux_loss trained at α against aux_free trained at γ (each method uses only
    its own rate), held-out MaxVio, specialisation and mean held-out loss of both, and aux_free − aux_loss."""
    from .settings import FINE_PAPER_SHAPE, PAPER_SHAPE

    families = {"standard": {"standard": False, PAPER_SHAPE: True}}
    if FINE_PAPER_SHAPE in settings.grid_shapes:
        families["fine-grained"] = {"fine-grained": False, FINE_PAPER_SHAPE: True}
    rows = rows[rows["seed"] == settings.seed].assign(
        mean_loss=rows[[c for c in rows.columns if c.startswith("loss_")]].mean(axis=1)
    )
    out = []
    for shape, labels in families.items():
        if not set(labels) <= set(rows["config"]):
            continue
        by = {(r.config, r.method): r for r in rows.itertuples()}
        for loss_label, loss_paper in labels.items():
            for free_label, free_paper in labels.items():
                a, f = by[(loss_label, "aux_loss")], by[(free_label, "aux_free")]
                out.append(
                    {
                        "shape": shape,
                        "alpha": settings.paper_rates if loss_paper else settings.alpha,
                        "gamma": settings.paper_rates if free_paper else settings.gamma,
                        **{
                            f"{value}_{method}": getattr(r, value)
                            for value in ("heldout_maxvio", "specialisation", "mean_loss")
                            for method, r in (("aux_loss", a), ("aux_free", f))
                        },
                    }
                )
    grid = pd.DataFrame(out)
    for value in ("heldout_maxvio", "specialisation", "mean_loss"):
        if len(grid):
            grid[f"{value}_difference"] = grid[f"{value}_aux_free"] - grid[f"{value}_aux_loss"]
    return grid


def counts_by_config(settings: ExpertLoadSettings, results: list) -> dict[str, np.ndarray]:
    """Every model's held-out routing counts per document: "<config>:<domain>" -> [documents, methods (METHODS
    order), seeds, layers, experts], the tables the intervals are computed from (saved beside the figure)."""
    return {
        f"{label}:{domain}": counts
        for label in settings.shapes
        for domain, counts in stacked_counts(results, label, settings.seeds_of(label)).items()
    }


def bootstrap_table(counts: dict[str, np.ndarray], n_boot: int, seed: int) -> pd.DataFrame:
    """The intervals of every config from its per-document counts (``counts_by_config``'s layout)."""
    configs = list(dict.fromkeys(key.split(":")[0] for key in counts))
    return pd.concat(
        [
            document_bootstrap(
                {k.split(":", 1)[1]: v for k, v in counts.items() if k.split(":")[0] == label},
                METHODS,
                n_boot=n_boot,
                seed=seed,
            ).assign(config=label)
            for label in configs
        ],
        ignore_index=True,
    )


def seed_statistics(settings: ExpertLoadSettings, corpus: DomainCorpus, results: list) -> tuple:
    """(per_seed, bootstrap, margins, counts): the specialisation and balance statistics over seeds and documents."""
    per_seed = seed_rows(results)
    counts = counts_by_config(settings, results)
    boot = bootstrap_table(counts, settings.size("n_boot"), settings.seed)
    values = ["specialisation", "heldout_maxvio", *[f"loss_{d}" for d in corpus.train]]
    margins = pd.DataFrame(
        [
            {
                "config": label,
                **paired_margin(per_seed[per_seed.config == label], "method", "aux_free", "aux_loss", value),
            }
            for label in settings.shapes
            for value in values
        ]
    )
    return per_seed, boot, margins, counts


def run(settings: ExpertLoadSettings) -> ExpertLoadTables:
    """Train every model in WORKERS processes and compute the notebook's tables."""
    corpus = domain_corpus(settings)
    started = time.perf_counter()
    jobs = [
        dict(settings=settings, seed=seed, label=label, method=method)
        for seed in settings.seeds
        for label, method in settings.runs
        if seed in settings.seeds_of(label)
    ]
    jobs += [dict(settings=settings, seed=settings.seed, label=label, method=m) for label, m in settings.grid_runs]
    results = run_parallel(
        expert_load_job,
        jobs,
        workers=settings.workers,
        desc="models",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    every, results = results, [r for r in results if r.config in settings.shapes]  # the grid's models aside
    info = {
        "models": len(every),
        "configurations": len(settings.runs),
        "grid models": len(settings.grid_runs),
        "seeds": len(settings.seeds),
        "seconds": time.perf_counter() - started,
        "processes": settings.workers,
        "train seconds": sum(r.seconds for r in every),
    }
    first = {(r.config, r.method): r for r in results if r.seed == settings.seed}
    load = pd.concat([first[("standard", m)].load for m in METHODS], ignore_index=True)[LOAD_COLUMNS]
    fine = None
    if "fine-grained" in settings.shapes:
        fine = pd.concat([first[("fine-grained", m)].load for m in METHODS], ignore_index=True)
    maxvio, summary = maxvio_tables(settings, first, load)
    per_seed, boot, margins, counts = seed_statistics(settings, corpus, results)
    return ExpertLoadTables(
        settings,
        corpus,
        info,
        first,
        load,
        fine,
        loss_table(settings, corpus, first),
        maxvio,
        summary,
        specialisation_table(load),
        per_seed,
        boot,
        margins,
        counts,
        shape_table(settings),
        grid_table(settings, seed_rows([r for r in every if r.seed == settings.seed])),
    )
