"""Notebook 06's Findings, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

import pandas as pd

from ...datasets.cognitive_tasks import TASKS
from ...io.report import share
from ...stats import every_seed_detectable, every_seed_power, margin_text, mean_std_text
from .job import CONTROL, MASK, PROBE
from .method import matched_condition
from .run import HeadImportanceTables

LEARNED_MARGIN = 0.05  # a family counts as learned above max(chance, majority) + this


def learned_families(accuracy: pd.DataFrame) -> list[str]:
    """Families whose held-out accuracy beats both chance and the majority answer by LEARNED_MARGIN."""
    best_guess = accuracy[["chance", "majority"]].max(axis=1)
    return accuracy[accuracy["held-out accuracy"] > best_guess + LEARNED_MARGIN].index.tolist()


def math_line(seed_table: pd.DataFrame, tag: str, name: str) -> str:
    """Whether Math is less similar to the others and deeper than each of them, seed by seed."""
    n = len(seed_table)
    cos = seed_table[f"{tag}: math cos − others cos"]
    deep = seed_table[f"{tag}: math depth − max other depth"]
    mean_deep = seed_table[f"{tag}: math depth − others' mean depth"]
    verdict = "**holds in every seed**" if (cos < 0).all() and (deep > 0).all() else "not supported in every seed"
    return (
        f"{name}: Math's similarity to the others minus the others' among themselves {mean_std_text(cos)} (Math less "
        f"similar in {int((cos < 0).sum())} of {n} seeds); Math's depth centroid minus the others' mean "
        f"{mean_std_text(mean_deep, 2)} layers (deeper than their mean in {int((mean_deep > 0).sum())} of {n} seeds, "
        f"deeper than every other function in {int((deep > 0).sum())} of {n}) — {verdict}"
    )


def learning_lines(t: HeadImportanceTables) -> str:
    """Which families the first seed learned, and the mean accuracy over seeds."""
    acc, st = t.accuracy, t.seed_table
    learned = learned_families(acc)
    unlearned = [f for f in acc.index if f not in learned]
    rows = "; ".join(
        f"{f} {r['held-out accuracy']:.2f} vs {r['chance']:.2f} / {r['majority']:.2f}" for f, r in acc.iterrows()
    )
    return f"""**Learning** (seed {t.settings.seed}, held-out accuracy vs chance / majority): {rows}.
Learned clearly above chance and majority (+{LEARNED_MARGIN:g}): {", ".join(learned) or "none"}; not learned:
{", ".join(unlearned) or "none"} — the maps of unlearned functions show where the loss gradient flows, not heads that
implement the function. Mean held-out accuracy over the 8 families across {len(st)} seeds:
{mean_std_text(st["mean held-out accuracy"])}."""


def probe_lines(t: HeadImportanceTables) -> str:
    """The probe's accuracy against its shuffled-label (no-signal) control, and the first layer's share of each method."""
    s, st = t.settings, t.seed_table
    layer1 = {m: sh[:, 0].sum(-1) for m, sh in t.shares.items()}  # [tasks] share of each task's importance in layer 1
    span = lambda m: f"{share(float(layer1[m].min()))}–{share(float(layer1[m].max()))}"  # noqa: E731
    return f"""**The probe against a no-signal control.** The task probe separates the families with held-out accuracy
{mean_std_text(st["probe held-out accuracy"])} ({len(st)} seeds); the same probe trained on shuffled labels reaches
{mean_std_text(st["control probe held-out accuracy"])} (chance {1 / len(TASKS):.3f}). The control's maps correlate with the
probe's maps at r = {mean_std_text(st["control correlation (task mean)"], 2)} (mean over tasks): that much of each probe map's
pattern appears without any task signal (heads that carry large activations and gradients whatever the labels). This
control removes the labels, not the prompt format: every family here has its own format, so format and function
coincide, and neither method can say whether a map belongs to the function or to its format. Share of each function's
importance in layer 1, the first (seed {s.seed}, uniform {1 / s.n_layers:.2f}): probe {span(PROBE)}, head mask {span(MASK)}."""


def ablation_lines(t: HeadImportanceTables) -> str:
    """The top heads' accuracy cost against random heads and against random heads in the same layers, by seed."""
    s, n, k = t.settings, len(t.seed_table), t.settings.top_heads
    margins = t.ablation_margins.set_index(["a", "b"])
    random = next(c for c in t.ablation_by_seed.condition.unique() if c.startswith("random"))
    drops = t.ablation_by_seed.groupby("condition", sort=False)["drop"]

    def against(method: str, control: str) -> str:
        return margin_text(margins.loc[(f"top-{k} ({method})", control)].to_dict())

    def verdict(method: str) -> str:
        m = margins.loc[(f"top-{k} ({method})", matched_condition(k, method))]
        if m["holds"] == m["n"]:
            return "more than its layers alone explain, in every seed"
        return f"**not** established beyond its layers (higher in {int(m['holds'])} of {int(m['n'])} seeds)"

    return f"""**Ablation** (heads ranked on the selection half, accuracy on the evaluation half, mean over the 8 tasks):
{"; ".join(f"{c} {mean_std_text(g)}" for c, g in drops)} accuracy over {n} seeds ({k} of {s.n_layers * s.n_heads} heads).
Against {k} random heads drawn from all heads, paired by seed: head-mask ranking {against(MASK, random)}, probe ranking
{against(PROBE, random)}, shuffled-label ranking {against(CONTROL, random)}. Against {k} random heads drawn **in the same
layers** as each task's top heads (the control that separates "these heads" from "these layers"): head-mask ranking
{against(MASK, matched_condition(k, MASK))} — {verdict(MASK)}; probe ranking {against(PROBE, matched_condition(k, PROBE))} —
{verdict(PROBE)}."""


def specificity_lines(t: HeadImportanceTables) -> str:
    """Whether a task's top heads matter for that task more than for the others (the cross-task matrix), and how
    many top heads the tasks share."""
    n, k = len(t.specificity.seed.unique()), t.settings.top_heads
    margins = t.specificity_margins.set_index("method")
    overlap = t.overlap[t.overlap["task a"] != t.overlap["task b"]].groupby("method", sort=False)["shared heads"].mean()
    parts = []
    for method in (MASK, PROBE):
        part = t.specificity[t.specificity.method == method]
        m = margins.loc[method]
        word = "specific" if m["holds"] == m["n"] and m["mean"] > 0 else "**not** specific in every seed"
        parts.append(
            f"{method}: own task {mean_std_text(part['diagonal'])}, other tasks {mean_std_text(part['off-diagonal'])}, "
            f"difference {margin_text(m.to_dict())} — {word}"
        )
    shared = ", ".join(f"{m} {overlap[m]:.1f}" for m in (MASK, PROBE))
    return f"""**Function specificity** (the cross-task matrix: each task's top {k} heads masked, every task's accuracy
measured on the evaluation half; {n} seeds, paired by seed). Mean accuracy drop of the task whose heads are masked
against the other seven: {"; ".join(parts)}. Two tasks' top-{k} sets share on average {shared} heads (mean over task
pairs and seeds; {k} would be the same set)."""


def findings(t: HeadImportanceTables) -> str:
    """Notebook 06's Findings (Markdown) from its tables."""
    n, st = len(t.seed_table), t.seed_table
    math = f"""**Is Math Calculation different, and deeper?** Over {n} seeds (mean ± std). {math_line(st, "mask", MASK)}.
{math_line(st, "probe", PROBE)}. "Holds" needs Math both less similar and deeper than every other function in all {n} seeds
({t.settings.n_layers} layers)."""
    lines = [learning_lines(t), arithmetic_lines(t), probe_lines(t), math, ablation_lines(t), specificity_lines(t)]
    return "\n\n".join(lines)


def power_text(st: pd.DataFrame, tag: str, name: str) -> str:
    """The every-seed depth rule's power: the true difference it detects with 80 % power, and its power at ours."""
    deeper = st[f"{tag}: math depth − others' mean depth"]
    n, spread, mean = len(deeper), float(deeper.std(ddof=1)), float(deeper.mean())
    return (
        f"{name}: seeds' spread {spread:.2f} layers, so 80 % power needs a true difference ≥ "
        f"{every_seed_detectable(spread, n):.2f} layers; at the observed {mean:+.2f} its power is "
        f"{share(every_seed_power(mean, spread, n))}"
    )


def arithmetic_lines(t: HeadImportanceTables) -> str:
    """How long the seeds trained for arithmetic, what Math Calculation reached, and the depth test's power there."""
    s, st = t.settings, t.seed_table
    steps, most = s.size("steps"), s.train_factor * s.size("steps")
    reached = st[st["math selection accuracy at the end"] >= s.math_target]
    trained = st["steps trained"]
    span = f"{trained.min():,}" if trained.min() == trained.max() else f"{trained.min():,}–{trained.max():,}"
    return f"""**Arithmetic, trained longer.** Every seed trained for STEPS = {steps:,} steps and then on, checking Math
Calculation's accuracy on the selection half every {max(1, steps // 10):,} steps, until it reached {s.math_target:g} or
{s.train_factor}× STEPS ({most:,} steps): {len(reached)} of {len(st)} seeds reached it ({span} steps trained). Math's
accuracy on the selection half went from {mean_std_text(st["math selection accuracy at STEPS"])} after STEPS to
{mean_std_text(st["math selection accuracy at the end"])} at the end; on all held-out prompts it ends at
{mean_std_text(st["math held-out accuracy"])}. **The depth test's power** at what it reached ("Math deeper than the
others' mean in every seed", {len(st)} seeds, seeds scattering normally): {power_text(st, "mask", MASK)};
{power_text(st, "probe", PROBE)}."""
