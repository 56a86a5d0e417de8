"""Notebook 05 over seeds and held-out documents: one model per job, per-document routing counts, bootstraps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from ...datasets.corpora import build_domain_corpus
from ...errors import MoeError
from ...measures import hooks
from ...moe.transformer import TransformerModel
from .method import METHODS, held_out_routing, specialisation_table, train_lm


@torch.no_grad()
def document_counts(
    model: TransformerModel, held_out: dict[str, torch.Tensor], doc_ids: dict[str, torch.Tensor], batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Per domain, tokens each held-out document sends to each expert: {domain: int array [documents, layers, experts]}.

    The windows are those of ``held_out_routing`` (non-overlapping, ``max_len`` bytes); a routed byte belongs to the
    document ``doc_ids[domain]`` gives it, so a window across a document boundary splits its tokens correctly.
    """
    model.eval()
    seq, n_experts, n_layers = model.config.max_len, model.config.router.n_experts, len(model.moe_layers)
    out = {}
    for name, stream in held_out.items():
        ids = doc_ids[name]
        if len(ids) != len(stream):
            raise MoeError(
                f"doc_ids[{name!r}] has {len(ids)} entries for {len(stream)} held-out bytes; they must match"
            )
        n_win = (len(stream) - 1) // seq
        n_docs = int(ids.max()) + 1
        x_all = stream[: n_win * seq].long().view(n_win, seq)  # [windows, S]
        doc = ids[: n_win * seq].view(n_win, seq)  # [windows, S]
        counts = torch.zeros(n_layers, n_docs * n_experts, dtype=torch.long)
        for start in range(0, n_win, batch_size):
            with hooks.record(model.routers()) as seen:
                model(x_all[start : start + batch_size])
            d = doc[start : start + batch_size]  # [b, S]
            for i in range(n_layers):
                idx = seen.output(i).topk_idx  # [b, S, K]
                flat = (d[..., None] * n_experts + idx).flatten()
                counts[i] += torch.bincount(flat, minlength=n_docs * n_experts)
        out[name] = counts.view(n_layers, n_docs, n_experts).permute(1, 0, 2).numpy()  # [docs, layers, experts]
    return out


@dataclass
class ModelTables:
    """One trained model's routing on the held-out text (small tables and per-document counts)."""

    config: str  # the shape: "standard" | "fine-grained"
    method: str  # "aux_loss" | "aux_free"
    seed: int
    history: pd.DataFrame  # per step: loss, loss_<domain>, maxvio_<layer>, …
    load: pd.DataFrame  # domain, layer, expert, tokens_routed, n_tokens, relative_load, config, method, seed
    loss: pd.DataFrame  # domain, held_out_tokens, held_out_loss, bits_per_byte, config, method, seed
    seconds: float
    doc_counts: dict[str, np.ndarray]  # domain -> [documents, layers, experts]
    states: dict = field(default_factory=dict)  # {"model": the trained state dict} (kept by io.trained)


@lru_cache(maxsize=1)
def domain_corpus(settings):
    """The settings' corpus (train and held-out bytes per domain), built once per process."""
    sizes = settings.sizes
    return build_domain_corpus(
        tokens_per_domain=sizes["tokens_per_domain"],
        seed=settings.seed,
        held_out_tokens_per_domain=sizes["held_out_tokens_per_domain"],
        held_out_doc_bytes=settings.held_out_doc_bytes,
    )


def expert_load_job(settings, seed: int, label: str, method: str) -> ModelTables:
    """Train one model of ``settings`` (an ExpertLoadSettings; shape ``label``, ``method``, ``seed``) and route the
    held-out text."""
    corpus = domain_corpus(settings)
    started = time.perf_counter()
    model, history = train_lm(
        settings.config(label, method),
        corpus.train,
        steps=settings.size("steps"),
        per_domain=settings.seqs_per_domain,
        lr=settings.lr,
        seed=seed,
        device=torch.device("cpu"),
        progress=False,
    )
    seconds = time.perf_counter() - started
    load, loss = held_out_routing(model, corpus.held_out, progress=False)
    tags = {"config": label, "method": method, "seed": seed}
    return ModelTables(
        label,
        method,
        seed,
        history,
        load.assign(**tags),
        loss.assign(**tags),
        seconds,
        document_counts(model, corpus.held_out, corpus.held_out_doc_ids),
        {"model": model.state_dict()},
    )


def seed_rows(results: list[ModelTables]) -> pd.DataFrame:
    """One row per (config, method, seed): specialisation, held-out MaxVio (global, layer mean), load range, losses."""
    from .method import global_maxvio

    rows = []
    for r in results:
        load = r.load
        spec = specialisation_table(load.assign(method=r.method)).iloc[0]
        mv = global_maxvio(load.assign(method=r.method))["maxvio"].mean()
        h = r.history
        train_mv = h[[c for c in h.columns if c.startswith("maxvio_")]].tail(100).mean().mean()
        row = {
            "config": r.config,
            "method": r.method,
            "seed": r.seed,
            "specialisation": spec["specialisation_all_layers"],
            "heldout_maxvio": mv,
            "train_maxvio_last100": train_mv,
            "min_relative_load": load["relative_load"].min(),
            "max_relative_load": load["relative_load"].max(),
            "train_seconds": r.seconds,
        }
        row.update({f"loss_{d}": v for d, v in r.loss.set_index("domain")["held_out_loss"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def stacked_counts(results: list[ModelTables], label: str, seeds: list[int]) -> dict[str, np.ndarray]:
    """{domain: [documents, methods, seeds, layers, experts]} of one config, methods in METHODS order."""
    by = {(r.method, r.seed): r.doc_counts for r in results if r.config == label}
    domains = list(next(iter(by.values())))
    return {d: np.stack([np.stack([by[(m, s)][d] for s in seeds], 1) for m in METHODS], 1) for d in domains}
