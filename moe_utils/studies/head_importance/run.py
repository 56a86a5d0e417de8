"""Notebook 06's study, settings -> run -> tables: every seed's whole study in parallel, summarised over seeds."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ...datasets.cognitive_tasks import ANSWERS, TASKS, make_task_data
from ...measures.heads import depth_centroid, importance_table, specificity_summary, task_similarity, top_head_overlap
from ...runtime import run_parallel
from ...stats import holm, mean_test, paired_margin
from .job import CONTROL, MASK, PROBE, SeedTables, head_importance_job
from .method import matched_condition
from .settings import HeadImportanceSettings
from .tables import MAIN_METHODS, HeadImportanceTables

METHOD_TAGS = {MASK: "mask", PROBE: "probe", CONTROL: "control"}
LEARNED_MARGIN = 0.05  # a family counts as learned above max(chance, majority) + this


def learned_families(accuracy: pd.DataFrame) -> list[str]:
    """Families whose held-out accuracy beats both chance and the majority answer by LEARNED_MARGIN."""
    best_guess = accuracy[["chance", "majority"]].max(axis=1)
    return accuracy[accuracy["held-out accuracy"] > best_guess + LEARNED_MARGIN].index.tolist()


def accuracy_table(first: SeedTables, families: pd.DataFrame) -> pd.DataFrame:
    """The first seed's accuracy per family beside chance (1 / candidates) and the majority answer's share."""
    accuracy = first.accuracy.assign(
        chance=[1 / len(a) for a in ANSWERS], majority=families.set_index("task")["majority"]
    )
    accuracy["above chance"] = accuracy["held-out accuracy"] - accuracy["chance"]
    return accuracy


def seed_row(r: SeedTables, learned: list[str]) -> dict:
    """One seed's probe accuracies, mean accuracy, control correlation and Math differences (depth also against the
    mean of the learned families other than Math)."""
    row = {
        "seed": r.seed,
        **r.probes,
        "mean held-out accuracy": float(r.accuracy["held-out accuracy"].mean()),
        "control correlation (task mean)": float(pd.Series(r.control_correlation).mean()),
        "steps trained": len(r.history),
        "math held-out accuracy": float(r.accuracy.loc["Math Calculation", "held-out accuracy"]),
        "math selection accuracy at STEPS": r.math_checks[0][1] if r.math_checks else float("nan"),
        "math selection accuracy at the end": r.math_checks[-1][1] if r.math_checks else float("nan"),
    }
    for _, m in r.math.iterrows():
        tag = METHOD_TAGS[m.method]
        row[f"{tag}: math cos − others cos"] = m["math vs others (mean cos)"] - m["among the other seven (mean cos)"]
        row[f"{tag}: math depth − max other depth"] = m["math depth centroid"] - m["max depth centroid of the seven"]
        row[f"{tag}: math depth − others' mean depth"] = m["math depth centroid"] - m["others' depth centroid (mean)"]
    others = [TASKS.index(t) for t in learned if t != "Math Calculation"]
    for method, shares in r.shares.items():
        depth = depth_centroid(shares)
        value = float(depth[TASKS.index("Math Calculation")] - depth[others].mean()) if others else float("nan")
        row[f"{METHOD_TAGS[method]}: math depth − learned others' mean depth"] = value
    return row


def ablation_statistics(
    results: list[SeedTables], k: int, learned: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(every seed's ablation, its mean over the learned tasks per seed and condition, each ranking against random
    heads drawn from all heads and against random heads in the same layers as its top heads, paired by seed)."""
    abl = pd.concat([r.ablation for r in results], ignore_index=True)
    by_seed = abl[abl.task.isin(learned)].groupby(["seed", "condition"], sort=False)["drop"].mean().reset_index()
    random = next(c for c in by_seed.condition.unique() if c.startswith("random"))
    rankings = [c for c in by_seed.condition.unique() if c.startswith("top-")]
    margins = [paired_margin(by_seed, "condition", c, random, "drop") for c in rankings]
    for c in rankings:
        method = c[c.index("(") + 1 : -1]
        margins.append(paired_margin(by_seed, "condition", c, matched_condition(k, method), "drop"))
    return abl, by_seed, pd.DataFrame(margins)


def family_margins(abl: pd.DataFrame, k: int, learned: list[str]) -> pd.DataFrame:
    """Per ranking and learned family: top-k drop − layer-matched random drop per seed, its mean, 95 % t-interval over
    seeds, two-sided p-value and Holm's adjustment over the learned families."""
    rows = []
    for method in (MASK, PROBE, CONTROL):
        wide = abl.pivot_table(index=["seed", "task"], columns="condition", values="drop")
        top, matched = f"top-{k} ({method})", matched_condition(k, method)
        if top not in wide or matched not in wide:
            continue
        diff = (wide[top] - wide[matched]).reset_index(name="margin")
        for task in learned:
            values = diff[diff.task == task]["margin"].to_numpy()
            t = mean_test(values)
            rows.append(
                {"method": method, "task": task, "margin": t["mean"], "low": t["low"], "high": t["high"], "p": t["p"],
                 "higher in": int((values > 0).sum()), "lower in": int((values < 0).sum()), "seeds": len(values)}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p (Holm)"] = np.nan
        for _, part in table.groupby("method"):
            table.loc[part.index, "p (Holm)"] = holm(part["p"].to_numpy())
    return table


def specificity_tables(
    results: list[SeedTables], learned: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(every seed's cross-task ablation, its diagonal and off-diagonal mean drops over the learned tasks per seed and
    method, the diagonal against the off-diagonal paired by seed per method)."""
    cross = pd.concat([r.cross for r in results], ignore_index=True)
    rows = []
    for (seed, method), part in cross.groupby(["seed", "method"], sort=False):
        matrix = part.pivot(index="masked", columns="measured", values="drop").loc[learned, learned]
        rows.append({"seed": seed, "method": method, **specificity_summary(torch.tensor(matrix.to_numpy()))})
    per_seed = pd.DataFrame(rows)
    long = per_seed.melt(["seed", "method"], ["diagonal", "off-diagonal"], var_name="part", value_name="drop")
    margins = pd.DataFrame(
        [
            {"method": m, **paired_margin(long[long.method == m], "part", "diagonal", "off-diagonal", "drop")}
            for m in per_seed.method.unique()
        ]
    )
    return cross, per_seed, margins


def overlap_table(results: list[SeedTables], k: int) -> pd.DataFrame:
    """Heads two tasks' top-k sets share, per method: mean and std over seeds (the diagonal is k)."""
    rows = []
    for method in results[0].shares:
        counts = torch.stack([top_head_overlap(r.shares[method], k) for r in results]).float()  # [seeds, C, C]
        mean, std = counts.mean(0), counts.std(0) if len(results) > 1 else torch.zeros_like(counts[0])
        for a, task_a in enumerate(TASKS):
            for b, task_b in enumerate(TASKS):
                rows.append(
                    {
                        "method": method,
                        "task a": task_a,
                        "task b": task_b,
                        "shared heads": float(mean[a, b]),
                        "std": float(std[a, b]),
                    }  # fmt: skip
                )
    return pd.DataFrame(rows)


def similarity_tables(shares: dict) -> tuple[dict, pd.DataFrame]:
    """Cosine similarity of the task maps per method, as tensors and as one long table."""
    similarity = {m: task_similarity(s) for m, s in shares.items()}
    table = pd.concat(
        [
            pd.DataFrame(s.numpy(), index=list(TASKS), columns=list(TASKS))
            .rename_axis("task")
            .reset_index()
            .assign(method=m)
            for m, s in similarity.items()
        ]
    )
    return similarity, table


def run(settings: HeadImportanceSettings) -> HeadImportanceTables:
    """Every seed's study in WORKERS processes (the first keeps its model); the notebook's tables."""
    torch.set_num_threads(settings.threads)
    sizes = settings.sizes
    _, _, families = make_task_data(settings.seed, sizes["n_train"], sizes["n_held_out"], seq_len=settings.seq_len)
    started = time.perf_counter()
    jobs = [dict(settings=settings, seed=s, keep_model=s == settings.seed) for s in settings.seeds]
    results = run_parallel(
        head_importance_job,
        jobs,
        workers=settings.workers,
        desc="seeds",
        keep=settings.kept_runs(),
        executor=settings.executor_choice,
    )
    info = {"seeds": len(results), "seconds": time.perf_counter() - started, "processes": settings.workers}
    first = results[0]
    shares = {m: first.shares[m] for m in MAIN_METHODS}
    similarity, similarity_table = similarity_tables(shares)
    depths = pd.DataFrame({m: depth_centroid(s).numpy() for m, s in shares.items()}, index=list(TASKS))
    accuracy = accuracy_table(first, families)
    learned = learned_families(accuracy)
    if len(learned) < 2:
        learned = list(TASKS)  # too few learned families to compare: every family, as the report says
    abl, by_seed, margins = ablation_statistics(results, settings.top_heads, learned)
    cross, specificity, specificity_margins = specificity_tables(results, learned)
    importance = importance_table(first.shares, list(TASKS), "task")
    return HeadImportanceTables(
        settings,
        info,
        families,
        first,
        accuracy,
        importance,
        similarity,
        similarity_table,
        first.math.drop(columns="seed"),
        depths,
        first.ablation.drop(columns="seed"),
        pd.DataFrame([seed_row(r, learned) for r in results]),
        abl,
        by_seed,
        margins,
        cross,
        specificity,
        specificity_margins,
        overlap_table(results, settings.top_heads),
        family_margins(abl, settings.top_heads, learned),
    )
