"""Notebook 08's study, settings -> run -> tables: one real model's analyses, beside the source papers' claims."""

from __future__ import annotations

import time

import torch

from ...hf.pretrained import REAL_MODELS
from .job import checkpoint_layers, head_tables, load_model, routing_tables
from .settings import RealModelSettings
from .tables import RealModelTables, RoutingTables


def check_sources(settings: RealModelSettings) -> None:
    """Before any work: every MODEL name resolves (real model key, complete folder, or a reachable hub id)."""
    from ...hf.loading import check_model_source

    for name in settings.checkpoint_names:
        if name not in REAL_MODELS:
            check_model_source(name)


def run(settings: RealModelSettings, log=print) -> tuple[RealModelTables, RoutingTables | None]:
    """The whole study on the last checkpoint (the only one unless several are given), plus the layer profile over
    checkpoints when REVISIONS or several folders are given."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    names = settings.checkpoint_names
    revisions = [r.strip() for r in settings.revisions.split(",") if r.strip()]
    started = time.perf_counter()
    model, tokenizer = load_model(names[-1], settings, revisions[-1] if revisions else None)
    log(f"loaded {settings.model} in {time.perf_counter() - started:.0f} s on {torch.get_num_threads()} threads")
    tables = head_tables(model, tokenizer, settings, log)
    title = REAL_MODELS[names[-1]].title if names[-1] in REAL_MODELS else names[-1]
    tables.info.update(model=title, tag=settings.tag)
    tables.prefix = settings.prefix
    routing = routing_tables(model, tokenizer, settings)
    if routing is not None:
        routing.prefix = settings.prefix
    del model
    if len(names) > 1 or revisions:
        tables.layers = checkpoint_layers(settings, log)
    tables.info["total seconds"] = time.perf_counter() - started
    return tables, routing
