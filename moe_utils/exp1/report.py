"""Notebooks 01–03's Findings, written from their tables: every number in the prose comes from here."""

from __future__ import annotations

import pandas as pd

from ..datasets.mnist_cifar import DISPLAY_NAMES, slug
from ..io.report import holds, share, signed
from ..stats import mean_std
from .data_summary import DataTables
from .four_models_study import FourModelsTables
from .gate_analysis import class_routing_summary
from .gate_analysis_study import GATES, VARIANTS, GateAnalysisTables
from .summary import SOURCE_COLUMN

MODELS = ["single expert", "pre-designed gate", "linear gate", "1-hidden-layer gate"]
HARD = 0.97  # a majority share of the second dataset (CIFAR) at least this is a hard split


def data_findings(t: DataTables) -> str:
    """Notebook 01: the cache's counts and how differently the two datasets' pixels look."""
    first, second = t.data.dataset_names
    totals, mean = t.totals, t.stats.set_index(["split", "dataset"])
    per_class = (
        t.counts.assign(second=t.counts["class"] >= t.data.n_first)
        .groupby("second")[["train", "test"]]
        .agg(["min", "max"])
    )
    zero = {d: mean.loc[("train", d), "share of zero pixels"] for d in (first, second)}
    span = lambda flag: f"{per_class.loc[flag, ('train', 'min')]:,}–{per_class.loc[flag, ('train', 'max')]:,}"  # noqa: E731
    return (
        f"The cache holds {int(totals.loc['total'].sum()):,} images: {totals.loc['total', 'train']:,} train "
        f"({totals.loc[first, 'train']:,} {first} + {totals.loc[second, 'train']:,} {second}) and "
        f"{totals.loc['total', 'test']:,} test. Per class, {first} has {span(False)} train images and {second} "
        f"{span(True)}. Pixel statistics differ strongly: {share(zero[first])} of {first}'s training pixels are exactly 0 "
        f"against {share(zero[second], 1)} of {second}'s (mean {mean.loc[('train', first), 'mean']:.1f} vs "
        f'{mean.loc[("train", second), "mean"]:.1f} of 255), which makes "which dataset is this?" an easy question for '
        f"a learned gate in notebook 02. {t.data.describe()}."
    )


def four_models_findings(t: FourModelsTables) -> str:
    """Notebook 02: final accuracy, source 004's claims, and the activation rates beside the source's."""
    s, data = t.settings, t.data
    test, train = t.final.set_index("model")["test"], t.final.set_index("model")["train"]
    claims = t.claims.set_index("claim (test accuracy)")
    verdicts = "; ".join(
        f"*{c}* {holds(r['holds'])} ({signed(100 * r['margin'], 2)} points)" for c, r in claims.iterrows()
    )
    claims_are = "Source 004's claims" if data.is_source_data else "The four models' orderings"
    text = f"""**Accuracy** ({s.size("epochs")} epochs, {data.source} data, seed {s.seed}). Final test accuracy:
{", ".join(f"{n} {test[n]:.3f}" for n in MODELS)} (train: {", ".join(f"{train[n]:.3f}" for n in MODELS)}). {claims_are},
on test accuracy: {verdicts}. A single linear softmax over {data.n_classes} classes already separates the two datasets' classes
through its logits, so handing each dataset its own linear expert adds little; learned gates can gain by splitting *within* the
datasets. One seed: notebook 03 tests these orderings over 5 seeds."""
    if not data.is_source_data:
        return text + f"\n\n**Activation rates**: see the table above ({data.describe()})."
    rate = t.rates.set_index(["model", "split", "dataset", "expert"])["rate"]
    theirs_rate = t.compared.set_index(["model", "split", "dataset", "expert"])[SOURCE_COLUMN]
    pair = lambda r, model, d: f"{r[model, 'test', d, 1]:.2f} / {r[model, 'test', d, 2]:.2f}"  # noqa: E731
    both = lambda model, d: f"{pair(rate, model, d)} ({pair(theirs_rate, model, d)})"  # noqa: E731
    first, second = data.dataset_names
    gap = (rate.xs("train", level="split") - rate.xs("test", level="split")).abs().max()
    return (
        text
        + f"""

**Activation rates** (test; expert 1 / expert 2, ours with source 004's in brackets). Pre-designed gate: {first}
{pair(rate, "pre-designed gate", first)}, {second} {pair(rate, "pre-designed gate", second)} (exact, as it must be). Linear
gate: {first} {both("linear gate", first)}, {second} {both("linear gate", second)}. 1-hidden-layer gate: {first}
{both("1-hidden-layer gate", first)}, {second} {both("1-hidden-layer gate", second)}. Expert numbers are arbitrary (the
experts are interchangeable): compare the pattern. Train and test rates differ by at most {gap:.3f}."""
    )


def claim_line(claims: pd.DataFrame, claim: str) -> str:
    """ "4 of 5 seeds (+1.2 ± 0.4 points, min −0.1)" for one of source 004's claims over seeds."""
    c = claims.set_index("claim (test accuracy)").loc[claim]
    return (
        f"{int(c['holds_in'])} of {int(c['seeds'])} seeds ({signed(100 * c['margin_mean'])} ± "
        f"{100 * c['margin_std']:.1f} points, min {signed(100 * c['margin_min'])})"
    )


def weight_lines(t: GateAnalysisTables) -> str:
    """Studies 1 and 2: near-hard per-input weights, and whole or split classes."""
    s, hid, lin = t.settings, GATES[1], GATES[0]
    first, second = t.splits.data.dataset_names
    n_classes = t.splits.data.n_classes
    test = t["summaries"][t["summaries"]["split"] == "test"]
    w = test.groupby(["model", "dataset"])[["frac_max_gt_0.9", "frac_within_0.1_of_rate", "activation_rate_e1"]].agg(
        ["mean", "std"]
    )
    v = lambda model, d, col, stat="mean", digits=0: share(w.loc[(model, d), (col, stat)], digits)  # noqa: E731
    every = t["all_class_rates"]
    split_col = next(c for c in class_routing_summary(t["class_rates"]).columns if c.startswith("classes_split"))
    by_seed = pd.DataFrame(
        {seed: class_routing_summary(every[every["seed"] == seed]).set_index("model")[split_col] for seed in s.seeds}
    ).T  # [seeds, models]
    n = len(s.seeds)
    return f"""**1 · Per-input gate weights are near-hard** ({n} seeds, test split, mean ± std). Share of inputs whose largest
gate weight exceeds 0.9: {hid} {v(hid, first, "frac_max_gt_0.9")} of {first} (± {v(hid, first, "frac_max_gt_0.9", "std")}),
{lin} {v(lin, first, "frac_max_gt_0.9")} of {first} and {v(lin, second, "frac_max_gt_0.9")} of {second}
(± {v(lin, second, "frac_max_gt_0.9", "std")}). Only {v(hid, first, "frac_within_0.1_of_rate", digits=1)} of {first} inputs get a
weight within 0.1 of the {hid}'s {first} activation rate ({w.loc[(hid, first), ("activation_rate_e1", "mean")]:.2f}): a shared
dataset is a split of its inputs, not a soft average.

**2 · Whole classes or split classes.** Classes with no expert holding ≥ 90 % of their weight, seed {s.seed}: {hid}
{by_seed.loc[s.seed, hid]} of {n_classes}, {lin} {by_seed.loc[s.seed, lin]} of {n_classes}; over the seeds {hid}
{by_seed[hid].min()}–{by_seed[hid].max()}, {lin} {by_seed[lin].min()}–{by_seed[lin].max()}."""


def sweep_lines(t: GateAnalysisTables) -> str:
    """Studies 3 and 4: more and richer experts, and the gate training strategies."""
    s = t.settings
    first, second = t.splits.data.dataset_names
    test = t["sweep_table"][t["sweep_table"]["split"] == "test"]
    most = test[test["n_experts"] == max(s.experts)]

    def span(dataset):
        shares = most[most["dataset"] == dataset]["majority_share"]
        return f"{shares.min():.2f}–{shares.max():.2f}"

    accuracy = "; ".join(f"{m} {a:.3f}" for m, a in t["sweep_final"].set_index("model")["test"].items())
    strat = t["strategy_table"].set_index("model")
    strategies = "; ".join(
        f"{m} {r['test']:.3f} ({r[f'{slug(second)}_majority_test']:.3f})"
        for m, r in strat.drop(index="pre-designed gate").iterrows()
    )
    return f"""**3 · More and richer experts** ({s.study_fraction:.0%} of the training set, {s.size("study_epochs")} epochs,
seed {s.seed}). Test accuracy: {accuracy}. With {max(s.experts)} experts the majority expert holds {span(first)} of {first} and
{span(second)} of {second}.

**4 · Gate training strategies** (seed {s.seed}; pre-designed gate {strat.loc["pre-designed gate", "test"]:.3f}). Test
accuracy and {second} majority share: {strategies}."""


def seed_lines(t: GateAnalysisTables) -> str:
    """Study 5: notebook 02's run over seeds, source 004's claims, and the activation rates."""
    s, hid, lin, claims = t.settings, GATES[1], GATES[0], t["claims"]
    first, second = t.splits.data.dataset_names
    fs = t["final_stats"][t["final_stats"]["split"] == "test"].set_index("model")
    rs = t["rate_stats"]
    rs = rs[(rs["split"] == "train") & (rs["expert"] == 1)].set_index(["model", "dataset"])
    rate = lambda model, d: mean_std(rs.loc[(model, d), "mean"], rs.loc[(model, d), "std"], 2)  # noqa: E731
    return f"""**5 · Across {len(s.seeds)} seeds** (full training set, {s.size("seed_epochs")} epochs), test accuracy:
{"; ".join(f"{m} {mean_std(r['mean'], r['std'])}" for m, r in fs.iterrows())}. *Linear gate beats the pre-designed gate* in
{claim_line(claims, "linear gate > pre-designed gate")}; *1-hidden-layer gate beats the pre-designed gate* in
{claim_line(claims, "1-hidden-layer gate > pre-designed gate")}; *the pre-designed gate beats the single expert* in
{claim_line(claims, "pre-designed gate > single expert")}. Activation rate of expert 1 (the larger {first} share on train):
{lin} {first} {rate(lin, first)}, {second} {rate(lin, second)}; {hid} {first} {rate(hid, first)}, {second} {rate(hid, second)}."""


def hard_split_lines(t: GateAnalysisTables) -> str:
    """Study 6: how often the split is hard, which settings give source 004's pattern, and whether epochs harden it."""
    s, hid, lin = t.settings, GATES[1], GATES[0]
    data = t.splits.data
    first, second = data.dataset_names
    two = f"{slug(second)}_majority"
    kinds, hs = t["seed_kinds"], t["hard_summary"].set_index(["variant", "model"])
    hard_in = lambda model: int((kinds.loc[kinds["model"] == model, two] >= HARD).sum())  # noqa: E731
    by_epoch = t["by_epoch"]
    full = by_epoch[by_epoch["variant"].str.startswith("02 setting, full data") & (by_epoch["dataset"] == second)]
    epochs = full.groupby(["model", "epoch"])["majority_share"].mean()
    first_last = lambda m: f"{epochs[m].iloc[0]:.2f} → {epochs[m].iloc[-1]:.2f}"  # noqa: E731
    harden = all(epochs[m].iloc[-1] <= epochs[m].iloc[0] + 0.01 for m in GATES)
    ours, raw, n = VARIANTS[0].name, "raw pixels 0-255", len(s.seeds)
    settings = "; ".join(
        f"{v} — {lin} {hs.loc[(v, lin), 'seed_like']}/{hs.loc[(v, lin), 'runs']}, {hid} "
        f"{hs.loc[(v, hid), 'seed_like']}/{hs.loc[(v, hid), 'runs']}"
        for v in dict.fromkeys(t["hard_summary"]["variant"])
    )
    source = " (source 004 reports 1.00 and 0.99)" if data.is_source_data else ""
    pattern = "source 004's pattern" if data.is_source_data else "the pattern"
    return f"""**6 · How hard is the split.** {second} majority share ≥ {HARD} in {hard_in(hid)} of {n} seeds for the {hid} and
{hard_in(lin)} of {n} for the {lin}{source}. Over {len(VARIANTS)} settings × {len(s.hard_seeds)} seeds, runs with {pattern}
(hard {second}, shared {first}): {settings}. Raw 0–255 pixels give the {lin} a mean {second} majority share of
{hs.loc[(raw, lin), f"{two}_mean"]:.3f} (our setting: {hs.loc[(ours, lin), f"{two}_mean"]:.3f}) at test accuracy
{hs.loc[(raw, lin), "test_accuracy_mean"]:.3f} (ours {hs.loc[(ours, lin), "test_accuracy_mean"]:.3f}). Over the full-data
epochs the mean {second} majority share goes {lin} {first_last(lin)}, {hid} {first_last(hid)}: more epochs
{"do not make the split harder" if harden else "harden the split in at least one gate"}."""


def gate_analysis_findings(t: GateAnalysisTables) -> str:
    """Notebook 03's Findings (Markdown) from its tables."""
    minutes = sum(t.timings.values()) / 60
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in t.timings.items())
    parts = [
        f"This run took **{minutes:.1f} min** of training and evaluation ({timing}).",
        weight_lines(t),
        sweep_lines(t),
        seed_lines(t),
        hard_split_lines(t),
    ]
    return "\n\n".join(parts)


def four_models_headline(final: pd.DataFrame, rates: pd.DataFrame) -> str:
    """One sentence for the README from notebook 02's final accuracy (model, train, test) and activation rates
    (model, split, dataset, …) tables."""
    test = final.set_index("model")["test"]
    datasets = " + ".join(dict.fromkeys(rates["dataset"]))
    accuracies = ", ".join(f"{test[m]:.3f} ({m})" for m in MODELS)
    return f"Experiment 1 re-run on {datasets}, one seed: test accuracy {accuracies}"


def gate_analysis_headline(claims: pd.DataFrame) -> str:
    """One sentence for the README from notebook 03's claims over seeds (claim, holds_in, seeds, margin_mean, …)."""
    rows = claims.set_index("claim (test accuracy)")

    def claim(name: str) -> str:
        r = rows.loc[name]
        return (
            f"*{name}* in {int(r.holds_in)} of {int(r.seeds)} seeds ({signed(100 * r.margin_mean, 1)} ± "
            f"{100 * r.margin_std:.1f} points)"
        )

    return "over seeds, " + "; ".join(claim(c) for c in rows.index)


def data_headline(counts: pd.DataFrame) -> str:
    """One sentence for notebook 01's summary from its class counts (class, name, train, test)."""
    datasets = [DISPLAY_NAMES.get(d, d) for d in dict.fromkeys(counts["name"].str.split(":").str[0])]
    return (
        f"{len(counts)} classes from {' and '.join(datasets)}, {int(counts.train.sum()):,} training and "
        f"{int(counts.test.sum()):,} test images, as one 32 × 32 grayscale uint8 tensor file"
    )
