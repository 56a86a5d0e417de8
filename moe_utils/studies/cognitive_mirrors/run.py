"""Notebook 10's study, settings -> run -> tables: the paper's pipeline on one real model and its tables."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ...datasets.cogqa import COMMIT, FUNCTIONS
from ...hf.pretrained import REAL_MODELS
from ...stats import bootstrap_p, holm, mean_test, resampled_draws
from .job import cognitive_mirrors, depth_rows
from .settings import CONDITIONS, LAYER_RANDOM, METHODS, RANDOM, SHUFFLED_TOP, TOP, CognitiveMirrorsSettings
from .tables import CognitiveMirrorsTables

COMPARISONS = (  # (name, the condition whose drop is compared, the control): margin = drop(first) − drop(control)
    ("top − random", TOP, RANDOM),
    ("top − random (layer-matched)", TOP, LAYER_RANDOM),
    ("shuffled top − random", SHUFFLED_TOP, RANDOM),
    ("top − shuffled top", TOP, SHUFFLED_TOP),
)
MEASURES = {"log-prob": 0, "exact match": 1}  # per token mean log-prob of the reference answer; greedy exact match


def load_model(settings: CognitiveMirrorsSettings):
    """(model, tokenizer) of MODEL, real models resolved to their converted folders."""
    from ...hf.loading import DENSE_ARCHITECTURES, load_causal_lm
    from ...hf.pretrained import resolve_model

    return load_causal_lm(
        resolve_model(settings.model),
        dtype=settings.dtype,
        device=settings.device,
        architectures=DENSE_ARCHITECTURES,
        purpose="notebook 10",
    )


def check_sources(settings: CognitiveMirrorsSettings) -> None:
    """Before any work: MODEL resolves (a real model key, a complete folder or a reachable hub id)."""
    from ...hf.loading import check_model_source

    if settings.model not in REAL_MODELS:
        check_model_source(settings.model)


def bootstrap_difference(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> dict:
    """mean(a) − mean(b) of two independent samples: 95 % bootstrap interval and two-sided bootstrap p-value."""
    draws = resampled_draws(
        lambda g: a[g[0]].mean() - b[g[1]].mean(), [np.arange(len(a)), np.arange(len(b))], n_boot, seed
    )
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(a.mean() - b.mean()), "low": float(low), "high": float(high), "p": bootstrap_p(draws)}


def tables_from(raw: dict, settings: CognitiveMirrorsSettings) -> CognitiveMirrorsTables:
    """The tables of one run of ``job.cognitive_mirrors``."""
    layers, heads = raw["shape"]
    results, groups = raw["results"], raw["groups"]
    base_lp, base_em = results["baseline"]
    importance_rows, elbow_rows = [], []
    for method in METHODS:
        values = raw["importance"][method]  # [F, L·H]
        shares = values.abs() / values.abs().sum(1, keepdim=True).clamp_min(1e-30)
        for f, function in enumerate(FUNCTIONS):
            importance_rows.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "function": function,
                        "layer": np.arange(layers * heads) // heads + 1,
                        "head": np.arange(layers * heads) % heads + 1,
                        "importance": values[f].numpy(),
                        "share": shares[f].numpy(),
                    }
                )
            )
            k = raw["k"][method][f]
            elbow_rows.append(
                {"method": method, "function": function, "heads": k, "share of heads": k / (layers * heads)}
            )
    ablation_rows, margin_rows, spec_rows, item_rows = [], [], [], []
    for f, function in enumerate(FUNCTIONS):
        g = groups[f]
        if not len(g):
            continue
        for i in g:
            item_rows.append(
                {
                    "condition": "baseline",
                    "function": function,
                    "item": int(i),
                    "log-prob": base_lp[i],
                    "exact match": base_em[i],
                }
            )
        for condition in CONDITIONS:
            if (function, condition) not in results:
                continue
            lp, em = results[(function, condition)]
            ablation_rows.append(
                {
                    "function": function,
                    "condition": condition,
                    "n": len(g),
                    "baseline log-prob": float(base_lp[g].mean()),
                    "log-prob": float(lp.mean()),
                    "log-prob drop": float(base_lp[g].mean() - lp.mean()),
                    "baseline exact match": float(base_em[g].mean()),
                    "exact match": float(em.mean()),
                    "exact-match drop": float(base_em[g].mean() - em.mean()),
                }
            )
            item_rows += [
                {"condition": condition, "function": function, "item": int(i), "log-prob": a, "exact match": b}
                for i, a, b in zip(g, lp, em)
            ]
        for name, first, control in COMPARISONS:
            if (function, first) not in results or (function, control) not in results:
                continue
            for measure, m in MEASURES.items():
                t = mean_test(
                    results[(function, control)][m] - results[(function, first)][m]
                )  # drop(first) − drop(control)
                margin_rows.append({"function": function, "comparison": name, "measure": measure, **t})
        lp_other, _, others = results[(function, "top, other functions")]
        own_drop = base_lp[g] - results[(function, TOP)][0]
        other_drop = base_lp[others] - lp_other
        d = bootstrap_difference(own_drop, other_drop, settings.sizes["n_boot"], settings.seed + 300 + f)
        spec_rows.append(
            {
                "function": function,
                "own drop": float(own_drop.mean()),
                "other functions' drop": float(other_drop.mean()),
                "difference": d["mean"],
                "low": d["low"],
                "high": d["high"],
                "p": d["p"],
                "own items": len(g),
                "other items": len(others),
            }
        )
    margins = pd.DataFrame(margin_rows)
    margins["p (Holm)"] = np.nan
    for _, part in margins.groupby(["comparison", "measure"]):
        margins.loc[part.index, "p (Holm)"] = holm(part["p"].to_numpy())
    specificity = pd.DataFrame(spec_rows)
    specificity["p (Holm)"] = holm(specificity["p"].to_numpy())
    depth = []
    for method in METHODS:
        depth += depth_rows(
            raw["per_item"][method],
            raw["labels"][method],
            (layers, heads),
            method,
            settings.sizes["n_boot"],
            settings.seed,
        )
    info = {
        "layers": layers,
        "heads": heads,
        "probe sub-questions (train)": len(raw["probe_items"]),
        "evaluation sub-questions (test)": len(raw["eval_items"]),
        "per function": settings.sizes["per_function"],
        "evaluation per function": settings.sizes["eval_per_function"],
        "cross items per function": settings.sizes["cross_per_function"],
        "top answer tokens": settings.top_tokens,
        "probe epochs": settings.sizes["epochs"],
        "random draws": settings.sizes["n_random"],
        "layer-matched draws": settings.n_layer_random,
        "CogQA commit": COMMIT,
        **raw["counts"],
        "seconds": raw["seconds"],
    }
    return CognitiveMirrorsTables(
        info,
        raw["accuracy"],
        pd.concat(importance_rows, ignore_index=True),
        pd.DataFrame(elbow_rows),
        pd.DataFrame(ablation_rows),
        margins,
        specificity,
        pd.DataFrame(depth),
        raw["heads"],
        pd.DataFrame(item_rows),
        prefix=settings.prefix,
    )


def run(settings: CognitiveMirrorsSettings, log=print) -> CognitiveMirrorsTables:
    """Load MODEL, run the paper's pipeline on CogQA and return the tables."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    model, tokenizer = load_model(settings)
    log(f"loaded {settings.model} in {time.perf_counter() - started:.0f} s on {torch.get_num_threads()} threads")
    tables = tables_from(cognitive_mirrors(model, tokenizer, settings, log), settings)
    title = REAL_MODELS[settings.model].title if settings.model in REAL_MODELS else settings.model
    tables.info.update(model=title, tag=settings.tag, **{"total seconds": time.perf_counter() - started})
    return tables
