"""One trained model of notebook 09: upcycle (or copy) the dense model, measure it, train its top feed-forward layers
on cached inputs, measure it again; the first seed's models are saved as Hugging Face checkpoints."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...datasets.corpora.domains import DOMAINS
from ...hf.loading import load_causal_lm, quiet_transformers
from ...hf.partial import cached_layer_output
from ...hf.pretrained import resolve_model
from ...hf.upcycle import upcycle
from ...io.atomic import temporary_prefix
from ...moe.training import warmup_cosine
from ...runtime import make_generator
from .method import (
    domain_windows,
    held_out_measures,
    layer_profile,
    noise_measures,
    train_step,
    trainable_parameters,
)
from .settings import METHODS, UpcycledSettings

EXPERTS_IMPLEMENTATION = (
    "grouped_mm"  # what from_pretrained picks here; transformers' fastest at 2k tokens (benchmarks)
)
BATCH = 8  # windows per evaluation batch: the batches of notebook 08's routing path, so loads match exactly


@dataclass
class RunTables:
    """One model's tables: training history, layer profile, held-out losses and routing counts, noise measures."""

    method: str
    seed: int
    history: pd.DataFrame  # step, lr, loss, aux_loss, loss_<domain>, maxvio_<layer>
    profile: pd.DataFrame  # step, layer, relative residual update, relative feed-forward output, loss
    losses: pd.DataFrame  # stage (init | trained), domain, held-out loss, predicted tokens
    counts: dict  # "<stage>:<domain>" -> int array [documents, MoE layers, experts] (MoE models)
    noise: pd.DataFrame  # stage, layer, sigma, jaccard, changed, kl, top-1 flips (free and routing pinned)
    seconds: float  # training time
    checkpoint: str  # the saved Hugging Face folder ("" when not saved)


@lru_cache(maxsize=1)
def dense_model(name: str):
    """(dense model, tokenizer) in float32 on the cpu: a real model's key or a Llama-family folder."""
    return load_causal_lm(resolve_model(name), dtype="float32", device="cpu", purpose="upcycling")


def first_moe_layer(settings: UpcycledSettings) -> int:
    """Index (from 0) of the lowest layer that becomes an MoE layer (and trains)."""
    return dense_model(settings.model)[0].config.num_hidden_layers - settings.moe_layers


@lru_cache(maxsize=1)
def windows(settings: UpcycledSettings):
    """The token windows of every domain (``method.domain_windows``) in the dense model's tokens."""
    sizes = settings.sizes
    tokenizer = dense_model(settings.model)[1]
    return domain_windows(tokenizer, settings.seed, settings.seq_len, sizes["train_windows"], sizes["held_out_windows"])


@lru_cache(maxsize=1)
def prepared(settings: UpcycledSettings):
    """The windows and the frozen lower layers' output on every window (computed once per process)."""
    dense = dense_model(settings.model)[0]
    data, first = windows(settings), first_moe_layer(settings)
    train = cached_layer_output(dense, torch.cat([data.train[d] for d in DOMAINS]), first, BATCH)  # [3·n, S, d]
    held = {d: cached_layer_output(dense, data.held_out[d], first, BATCH) for d in DOMAINS}  # [n, S, d] each
    return data, train, held


def noise_windows(settings: UpcycledSettings, data, held: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The first NOISE_WINDOWS held-out windows of each domain: (cached inputs [B, S, d], token ids [B, S])."""
    n = settings.size("noise_windows")
    return torch.cat([held[d][:n] for d in DOMAINS]), torch.cat([data.held_out[d][:n] for d in DOMAINS])


def save_checkpoint(model, tokenizer, folder: Path) -> Path:
    """``model`` and its tokenizer as a Hugging Face folder (``from_pretrained``), written atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=temporary_prefix(folder.name), suffix=".staging", dir=folder.parent))
    try:
        with quiet_transformers():  # no progress bar frozen into the saved notebook
            model.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder


def build_model(settings: UpcycledSettings, method: str, seed: int):
    """The model a run trains: the dense model upcycled with ``seed``'s router (and re-drawn neurons), or a copy."""
    dense, _ = dense_model(settings.model)
    if method not in METHODS:
        return copy.deepcopy(dense)
    model = upcycle(
        dense,
        settings.n_experts,
        settings.top_k,
        settings.moe_layers,
        reinit_share=settings.reinit_share,
        router_std=settings.router_std,
        seed=seed,
    )
    model.set_experts_implementation(EXPERTS_IMPLEMENTATION)
    return model


def measure(model, settings, data, held, first: int, seed: int, stage: str):
    """Held-out losses, routing counts and noise measures of ``model`` at ``stage``."""
    losses, counts = held_out_measures(model, held, data.held_out, data.held_doc, first, BATCH)
    x, _ = noise_windows(settings, data, held)
    noise = noise_measures(model, x, first, settings.sigmas, seed, costs=stage != "init")  # init: the routing only
    return losses.assign(stage=stage), {f"{stage}:{d}": c for d, c in counts.items()}, noise.assign(stage=stage)


def upcycled_job(settings: UpcycledSettings, method: str, seed: int, export: bool = False) -> RunTables:
    """Upcycle (or copy), measure, train STEPS steps on PER_DOMAIN windows of each domain, measure again."""
    torch.set_num_threads(settings.threads)
    data, train_h, held = prepared(settings)
    _, tokenizer = dense_model(settings.model)
    first = first_moe_layer(settings)
    model = build_model(settings, method, seed)
    params = trainable_parameters(model, first)
    losses0, counts0, noise0 = measure(model, settings, data, held, first, seed, "init")
    steps, every = settings.size("steps"), settings.size("steps") // settings.sizes["n_checkpoints"]
    warmup = min(settings.warmup_steps, steps // 4)  # the quick profile's few steps keep a quarter's warm-up
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(min(s, steps - 1), steps, warmup))
    generator = make_generator(seed + 1, "cpu")  # the data order: the same for both methods at one seed
    n_train = len(data.train[DOMAINS[0]])
    order = [torch.randperm(n_train, generator=generator) + d * n_train for d in range(len(DOMAINS))]
    windows = torch.cat([data.train[d] for d in DOMAINS])
    probe_x, probe_w = noise_windows(settings, data, held)
    pd_ = settings.per_domain
    history, profile = [], [layer_profile(model, probe_x, probe_w, first).assign(step=0)]
    started = time.perf_counter()
    for step in range(steps):
        idx = torch.cat([o[step * pd_ : (step + 1) * pd_] for o in order])  # [3·per_domain]
        ids = torch.arange(len(DOMAINS)).repeat_interleave(pd_)
        row = {"step": step + 1, "lr": opt.param_groups[0]["lr"]}
        row.update(train_step(model, opt, train_h[idx], windows[idx], ids, first, method, settings.rate[method]))
        sched.step()
        history.append(row)
        if (step + 1) % every == 0:
            profile.append(layer_profile(model, probe_x, probe_w, first).assign(step=step + 1))
    seconds = time.perf_counter() - started
    losses1, counts1, noise1 = measure(model, settings, data, held, first, seed, "trained")
    folder = ""
    if export:
        name = f"{method}-seed{seed}"
        folder = str(save_checkpoint(model, tokenizer, settings.checkpoint_dir / name))
    return RunTables(
        method,
        seed,
        pd.DataFrame(history),
        pd.concat(profile, ignore_index=True),
        pd.concat([losses0, losses1], ignore_index=True),
        {k: np.asarray(v) for k, v in {**counts0, **counts1}.items()},
        pd.concat([noise0, noise1], ignore_index=True),
        seconds,
        folder,
    )
