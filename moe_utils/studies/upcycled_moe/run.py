"""Notebook 09's study, settings -> run -> tables: every (method, seed) model trained, measured before and after
training, summarised over seeds and held-out documents; the saved checkpoints routed again by notebook 08's path."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...datasets.corpora.domains import DOMAINS
from ...hf.loading import load_causal_lm
from ...hf.routing import expert_load_on_windows
from ...hf.upcycle import parameter_counts
from ...io import paths
from ...measures.routing import max_violation
from ...measures.specialisation import document_bootstrap, domain_specialisation
from ...runtime import run_parallel
from ...stats import paired_margin, t_interval
from .job import BATCH, EXPERTS_IMPLEMENTATION, RunTables, build_model, dense_model, upcycled_job, windows
from .method import load_rows
from .settings import METHODS, UpcycledSettings
from .tables import UpcycledTables

NOISE_VALUES = ["jaccard", "changed", "kl", "kl (routing pinned)", "top-1 flips", "top-1 flips (routing pinned)"]
PROFILE_VALUES = ["relative residual update", "relative feed-forward output"]
STAGES = ("init", "trained")
SHUFFLES = 200  # random deals of the held-out documents to domains (the no-signal control)


def relative(counts: np.ndarray) -> np.ndarray:
    """Relative load tokens / (K·T/N) of summed counts [..., experts]."""
    counts = counts.astype(float)
    return counts / (counts.sum(-1, keepdims=True) / counts.shape[-1])


def shuffled_specialisation(by_domain: list[np.ndarray], n_perm: int, seed: int) -> float:
    """The no-signal floor: mean specialisation when the held-out documents are dealt to the domains at random
    (each domain keeping its number of documents). by_domain: per domain [documents, layers, experts]."""
    docs = np.concatenate(by_domain)  # [documents, layers, E]
    sizes = np.cumsum([len(d) for d in by_domain])[:-1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_perm):
        groups = np.split(docs[rng.permutation(len(docs))], sizes)
        values.append(domain_specialisation(relative(np.stack([g.sum(0) for g in groups]))))
    return float(np.mean(values))


def seed_rows(result: RunTables, n_perm: int = SHUFFLES) -> list[dict]:
    """Per stage: specialisation (std over domains of relative load, mean over layers and experts) and its value with
    the documents' domains shuffled, held-out MaxVio (domains pooled, mean over layers), the largest relative load and
    the mean held-out loss."""
    rows = []
    for stage in STAGES:
        by_domain = [result.counts[f"{stage}:{d}"] for d in DOMAINS]  # [documents, layers, E] each
        summed = np.stack([c.sum(0) for c in by_domain])  # [domains, layers, E]
        pooled = summed.sum(0)  # [layers, E]
        loss = result.losses[result.losses.stage == stage]
        rows.append(
            {
                "method": result.method,
                "seed": result.seed,
                "stage": stage,
                "specialisation": domain_specialisation(relative(summed)),
                "specialisation, domains shuffled": (floor := shuffled_specialisation(by_domain, n_perm, result.seed)),
                "specialisation above the shuffled floor": domain_specialisation(relative(summed)) - floor,
                "heldout_maxvio": float(np.mean([max_violation(torch.tensor(c)) for c in pooled])),
                "max_relative_load": float(relative(summed).max()),
                "held-out loss": float(loss["held-out loss"].mean()),
            }
        )
    return rows


def stacked(results: list[RunTables], seeds: list[int], stage: str) -> dict[str, np.ndarray]:
    """{domain: [documents, methods, seeds, layers, experts]} of the MoE models at ``stage``, methods in METHODS order."""
    by = {(r.method, r.seed): r.counts for r in results if r.method in METHODS}
    return {
        d: np.stack([np.stack([by[(m, s)][f"{stage}:{d}"] for s in seeds], 1) for m in METHODS], 1) for d in DOMAINS
    }


def margins_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Paired by seed: aux_free − aux_loss of each statistic after training, and trained − init per method."""
    rows = []
    trained = per_seed[per_seed.stage == "trained"]
    for value in ("specialisation", "specialisation above the shuffled floor", "heldout_maxvio", "held-out loss"):
        rows.append(
            {
                "comparison": "aux_free − aux_loss (trained)",
                **paired_margin(trained, "method", "aux_free", "aux_loss", value),
            }
        )
    for method in METHODS:
        part = per_seed[per_seed.method == method]
        for value in ("specialisation", "heldout_maxvio"):
            rows.append(
                {"comparison": f"{method}: trained − init", **paired_margin(part, "stage", "trained", "init", value)}
            )
    return pd.DataFrame(rows)


def routing_cost_margins(noise: pd.DataFrame, sigma: float = 0.5) -> pd.DataFrame:
    """Per trained MoE model (method, seed), mean over its MoE layers of free − pinned KL and top-1 flips at the σ
    nearest ``sigma``: the cost of the routing change under that noise, with a t-interval over the models."""
    trained = noise[(noise.stage == "trained") & noise.method.isin(METHODS)]
    nearest = min(trained.sigma.unique(), key=lambda s: abs(s - sigma))
    part = trained[trained.sigma == nearest]
    rows = []
    for value in ("kl", "top-1 flips"):
        diff = (part[value] - part[f"{value} (routing pinned)"]).groupby([part.method, part.seed]).mean()
        mean, low, high = t_interval(diff.to_numpy())
        rows.append(
            {
                "comparison": "routing free − pinned",
                "value": value,
                "sigma": nearest,
                "mean": mean,
                "std": float(diff.std(ddof=1)),
                "n": len(diff),
                "holds": int((diff > 0).sum()),
                "below": int((diff < 0).sum()),
                "t_low": low,
                "t_high": high,
            }  # fmt: skip
        )
    return pd.DataFrame(rows)


def noise_summary(noise: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every noise measure per method, stage, layer and σ; the share of the KL that goes
    with the routing change (1 − pinned / free)."""
    values = [v for v in NOISE_VALUES if v in noise]
    grouped = noise.groupby(["method", "stage", "layer", "sigma"], sort=False)[values]
    out = grouped.mean().join(grouped.std(ddof=1), rsuffix=" std").reset_index()
    out["seeds"] = grouped.size().to_numpy()
    out["layer"] = out["layer"].astype(int)
    out["kl share of the routing change"] = 1 - out["kl (routing pinned)"] / out["kl"]
    return out


def profile_trends(profile: pd.DataFrame) -> pd.DataFrame:
    """Per method, layer and quantity: Spearman ρ of the quantity with the step in each seed, summarised."""
    rows = []
    for (method, layer), part in profile.groupby(["method", "layer"], sort=False):
        for quantity in PROFILE_VALUES:
            rhos = [float(g["step"].rank().corr(g[quantity].rank())) for _, g in part.groupby("seed", sort=False)]
            rows.append(
                {
                    "method": method,
                    "layer": layer,
                    "quantity": quantity,
                    "rho mean": float(np.mean(rhos)),
                    "seeds rising (rho > 0.5)": int(sum(r > 0.5 for r in rhos)),
                    "seeds falling (rho < -0.5)": int(sum(r < -0.5 for r in rhos)),
                    "seeds": len(rhos),
                    "first": float(part[part.step == part.step.min()][quantity].mean()),
                    "last": float(part[part.step == part.step.max()][quantity].mean()),
                }
            )
    return pd.DataFrame(rows)


def checkpoint_check(results: list[RunTables], settings: UpcycledSettings, log=print) -> pd.DataFrame:
    """Each saved MoE checkpoint reloaded with ``from_pretrained`` and routed by notebook 08's path
    (``hf.routing.expert_load_on_windows``) on the held-out windows: its loads against the notebook's own counts."""
    data = windows(settings)
    rows = []
    for r in results:
        if r.method not in METHODS or not r.checkpoint:
            continue
        folder = Path(r.checkpoint)
        if not folder.exists():
            log(f"{folder} is gone; RETRAIN = True saves it again")
            continue
        with warnings.catch_warnings():  # the empty shared-expert MLP (none here) warns at init
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            model, _ = load_causal_lm(str(folder), dtype="float32", device="cpu", purpose="notebook 08's routing path")
        theirs = expert_load_on_windows(model, dict(data.held_out), batch_size=BATCH, label=r.method)
        first = min(theirs.layer) - 1
        ours = load_rows(
            {d: r.counts[f"trained:{d}"] for d in DOMAINS},
            list(range(first, first + settings.moe_layers)),
            settings.top_k,
        )
        both = theirs.merge(ours, on=["domain", "layer", "expert"], suffixes=(" (08's path)", " (09)"))
        diff = (both["tokens_routed (08's path)"] - both["tokens_routed (09)"]).abs()
        rows.append(
            {
                "method": r.method,
                "seed": r.seed,
                "checkpoint": str(
                    folder.relative_to(paths.REPO_ROOT) if folder.is_relative_to(paths.REPO_ROOT) else folder
                ),
                "architecture": type(model).__name__,
                "cells compared": len(both),
                "cells equal": int((diff == 0).sum()),
                "largest difference (tokens)": int(diff.max()),
                "identical": bool((diff == 0).all() and len(both) == len(ours)),
            }
        )
        del model
    return pd.DataFrame(rows)


def run(settings: UpcycledSettings, log=print) -> UpcycledTables:
    """Train and measure every model (kept runs are loaded); the notebook's tables."""
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    jobs = [dict(settings=settings, method=m, seed=s, export=s == settings.seed) for m, s in settings.runs]
    results: list[RunTables] = run_parallel(
        upcycled_job,
        jobs,
        workers=settings.workers,
        desc="models",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    moe = [r for r in results if r.method in METHODS]
    per_seed = pd.DataFrame([row for r in moe for row in seed_rows(r)])
    seeds = settings.seeds
    counts = {f"{stage}:{d}": v for stage in STAGES for d, v in stacked(results, seeds, stage).items()}
    boot = document_bootstrap(
        {d: counts[f"trained:{d}"] for d in DOMAINS}, METHODS, n_boot=settings.size("n_boot"), seed=settings.seed
    )
    first = dense_model(settings.model)[0].config.num_hidden_layers - settings.moe_layers
    layers = list(range(first, first + settings.moe_layers))
    load = pd.concat(
        [
            load_rows({d: r.counts[f"{stage}:{d}"] for d in DOMAINS}, layers, settings.top_k).assign(
                method=r.method, seed=r.seed, stage=stage
            )
            for r in moe
            for stage in STAGES
        ],
        ignore_index=True,
    )
    tag = lambda frame, r: frame.assign(method=r.method, seed=r.seed)  # noqa: E731
    noise = pd.concat([tag(r.noise, r) for r in results], ignore_index=True)
    upcycled = build_model(settings, METHODS[0], settings.seed)
    counts_up, dense_total = (
        parameter_counts(upcycled),
        sum(p.numel() for p in dense_model(settings.model)[0].parameters()),
    )
    del upcycled
    parameters = pd.DataFrame(
        [
            {"model": "dense", "total parameters": dense_total, "active parameters": dense_total},
            {"model": "upcycled MoE", "total parameters": counts_up["total"], "active parameters": counts_up["active"]},
        ]
    )
    checks = checkpoint_check(results, settings, log)
    tokens = settings.size("steps") * len(DOMAINS) * settings.per_domain * settings.seq_len
    info = {
        "models": len(results),
        "seconds": time.perf_counter() - started,
        "train seconds": {f"{r.method} seed {r.seed}": round(r.seconds, 1) for r in results},
        "train tokens per model": tokens,
        "first MoE layer": first + 1,
        "layers": settings.moe_layers,
        "experts implementation": EXPERTS_IMPLEMENTATION,
        "threads": settings.threads,
        "load average": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
    }
    return UpcycledTables(
        settings,
        windows(settings).info,
        parameters,
        pd.concat([tag(r.losses, r) for r in results], ignore_index=True),
        load,
        per_seed,
        pd.concat([margins_table(per_seed), routing_cost_margins(noise)], ignore_index=True),
        boot,
        counts,
        noise,
        noise_summary(noise),
        pd.concat([tag(r.history, r) for r in results], ignore_index=True),
        pd.concat([tag(r.profile, r) for r in results], ignore_index=True),
        profile_trends(pd.concat([tag(r.profile, r) for r in results], ignore_index=True)),
        checks,
        info,
    )
