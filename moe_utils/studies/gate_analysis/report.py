"""Notebook 03's Findings, summary line and README passage, written from its tables: every number comes from here."""

from __future__ import annotations

import pandas as pd

from ...datasets.mnist_cifar import slug
from ...exp1.gate_analysis import class_routing_summary
from ...io.report import share, signed
from ...stats import mean_std
from .job import GATES, VARIANTS
from .settings import GateAnalysisSettings
from .tables import GateAnalysisTables

HARD = 0.97  # a majority share of the second dataset (CIFAR) at least this is a hard split


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
    test = t.summaries[t.summaries["split"] == "test"]
    w = test.groupby(["model", "dataset"])[["frac_max_gt_0.9", "frac_within_0.1_of_rate", "activation_rate_e1"]].agg(
        ["mean", "std"]
    )
    v = lambda model, d, col, stat="mean", digits=0: share(w.loc[(model, d), (col, stat)], digits)  # noqa: E731
    every = t.all_class_rates
    split_col = next(c for c in class_routing_summary(t.class_rates).columns if c.startswith("classes_split"))
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
    test = t.sweep_table[t.sweep_table["split"] == "test"]
    most = test[test.n_experts == max(s.experts)]

    def span(dataset):
        shares = most[most.dataset == dataset]["majority_share"]
        return f"{shares.min():.2f}–{shares.max():.2f}"

    accuracy = "; ".join(f"{m} {a:.3f}" for m, a in t.sweep_final.set_index("model")["test"].items())
    strat = t.strategy_table.set_index("model")
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
    s, hid, lin, claims = t.settings, GATES[1], GATES[0], t.claims
    first, second = t.splits.data.dataset_names
    fs = t.final_stats[t.final_stats["split"] == "test"].set_index("model")
    rs = t.rate_stats
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
    kinds, hs = t.seed_kinds, t.hard_summary.set_index(["variant", "model"])
    hard_in = lambda model: int((kinds.loc[kinds["model"] == model, two] >= HARD).sum())  # noqa: E731
    by_epoch = t.by_epoch
    full = by_epoch[by_epoch["variant"].str.startswith("02 setting, full data") & (by_epoch["dataset"] == second)]
    epochs = full.groupby(["model", "epoch"])["majority_share"].mean()
    first_last = lambda m: f"{epochs[m].iloc[0]:.2f} → {epochs[m].iloc[-1]:.2f}"  # noqa: E731
    harden = all(epochs[m].iloc[-1] <= epochs[m].iloc[0] + 0.01 for m in GATES)
    ours, raw, n = VARIANTS[0].name, "raw pixels 0-255", len(s.seeds)
    settings = "; ".join(
        f"{v} — {lin} {hs.loc[(v, lin), 'seed_like']}/{hs.loc[(v, lin), 'runs']}, {hid} "
        f"{hs.loc[(v, hid), 'seed_like']}/{hs.loc[(v, hid), 'runs']}"
        for v in dict.fromkeys(t.hard_summary["variant"])
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


def findings(t: GateAnalysisTables) -> str:
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


def headline(t: GateAnalysisTables) -> str:
    """One sentence for the README from notebook 03's claims over seeds (claim, holds_in, seeds, margin_mean, …)."""
    rows = t.claims.set_index("claim (test accuracy)")

    def claim(name: str) -> str:
        r = rows.loc[name]
        return (
            f"*{name}* in {int(r.holds_in)} of {int(r.seeds)} seeds ({signed(100 * r.margin_mean, 1)} ± "
            f"{100 * r.margin_std:.1f} points)"
        )

    return "over seeds, " + "; ".join(claim(c) for c in rows.index)


def digits_by_expert(routing: pd.DataFrame, model: str, hard: float = 0.9) -> tuple[list, list]:
    """The first dataset's classes (0-9) whose weight goes to expert 1 / expert 2 (≥ ``hard``) under ``model``."""
    part = routing[(routing["model"] == model) & (routing["class"] < 10)]
    wide = part.pivot(index="class", columns="expert", values="rate")
    return [int(c) for c in wide.index[wide[1] >= hard]], [int(c) for c in wide.index[wide[2] >= hard]]


def readme_section(t: GateAnalysisTables) -> str:
    """The README's passage on notebook 03: source 004's run over seeds, how hard the gates decide, and what makes the
    split hard."""
    s = GateAnalysisSettings()
    finals = t.finals
    n = finals.seed.nunique()
    acc = finals.groupby("model", sort=False)["test"]
    accuracy = ", ".join(f"{mean_std(acc.mean()[m], acc.std()[m])} ({m})" for m in acc.mean().index)
    claims = t.claims.set_index("claim (test accuracy)")

    def claim(c):
        r = claims.loc[c]
        return (
            f"{int(r.holds_in)}/{int(r.seeds)} seeds, {signed(100 * r.margin_mean)} ± {100 * r.margin_std:.1f} points"
        )

    summary = t.summaries
    mnist = summary[(summary.split == "test") & (summary.dataset == "MNIST") & (summary.model == GATES[1])]
    one, two = digits_by_expert(t.class_rates, GATES[1])
    hard = t.hard_numbers
    full = hard[(hard.table == "final, per seed") & hard.variant.str.startswith("02 setting, full data")]
    cifar = full[(full.split == "test") & (full.dataset == "CIFAR")]
    hard_in = {g: int((cifar[cifar.model == g].majority_share >= 0.97).sum()) for g in GATES}
    hs = t.hard_summary.set_index(["variant", "model"])
    every = [v for (v, m), r in hs.iterrows() if m == GATES[0] and r.seed_like == r.runs]
    ours, raw = "02 setting: tf init, Adam 1e-3, pixels/255", "raw pixels 0-255"
    cost = 100 * (hs.loc[(raw, GATES[0]), "test_accuracy_mean"] - hs.loc[(ours, GATES[0]), "test_accuracy_mean"])
    epochs = hard[(hard.table == "per epoch, training batches") & hard.variant.str.startswith("02 setting, full data")]
    epochs = epochs[epochs.dataset == "CIFAR"].groupby(["model", "epoch"])["majority_share"].mean()
    softer = all(epochs[g].iloc[-1] <= epochs[g].iloc[0] + 0.01 for g in GATES)
    sweep = t.sweep_table
    test = sweep[sweep.split == "test"]
    big = test[(test.n_experts == test.n_experts.max()) & (test.experts == "mlp")]
    best = big.groupby("model")["test"].first().max()
    single = test[(test.n_experts == 1) & (test.experts == "linear")]["test"].iloc[0]
    majority = test[test.n_experts == test.n_experts.max()]["majority_share"].max()
    strat = t.strategy_table.set_index("model")
    frozen = [f"{g} | frozen experts" for g in GATES]
    pre = strat.loc["pre-designed gate"]
    frozen_match = all(
        abs(strat.loc[m, "test"] - pre.test) < 0.005 and strat.loc[m, "cifar_majority_test"] > 0.99 for m in frozen
    )
    return f"""* **Across {n} seeds** (seeds {s.seed}–{s.seed + n - 1}, full data, {s.seed_epochs} epochs, one process per
  seed) test accuracy is {accuracy} (`figures/03_final_accuracy_seeds.csv`, `figures/03_claims_seeds.csv`). *The linear gate
  beats the pre-designed gate* in {claim("linear gate > pre-designed gate")}; *the 1-hidden-layer gate beats it* in
  {claim("1-hidden-layer gate > pre-designed gate")}; *the pre-designed gate beats the single expert* in
  {claim("pre-designed gate > single expert")}.
* **Gates decide near-hard per input**: {share(mnist["frac_max_gt_0.9"].mean())} of MNIST test inputs get > 0.9 weight
  on one expert under the 1-hidden-layer gate (mean over seeds); at seed {s.seed} its "shared MNIST" is whole digits sent
  to each expert ({", ".join(map(str, one)) or "none"} vs {", ".join(map(str, two)) or "none"}), not soft weights
  (`figures/03_gate_weight_hist.png`, `figures/03_class_routing.png`).
* **Source 004's near-hard CIFAR split is seed-dependent**: CIFAR majority share ≥ 0.97 in {hard_in[GATES[1]]}/{n} seeds for
  the 1-hidden-layer gate, {hard_in[GATES[0]]}/{n} for the linear gate. Of {hs.index.get_level_values(0).nunique()} training
  settings ({s.hard_split_seeds} seeds each), {", ".join(every) or "none"} give{"s" if len(every) == 1 else ""} the linear gate
  source 004's pattern (hard CIFAR, shared MNIST) in every seed; raw 0–255 pixels cost {signed(cost)} points of test accuracy;
  more epochs {"do not make the split harder" if softer else "harden it"} (`figures/03_hard_split.png`).
* **More/richer experts**: {int(test.n_experts.max())} hidden-layer experts reach {best:.3f} against {single:.3f} for one
  linear expert ({share(s.study_fraction)} of the data), and no expert of the {int(test.n_experts.max())}-expert mixtures holds
  more than {share(majority)} of either dataset; **frozen pre-trained experts** make both gates relearn
  {"exactly" if frozen_match else "not quite"} the pre-designed split and its accuracy ({pre.test:.3f};
  `figures/03_expert_sweep.png`, `figures/03_gate_strategies.png`)."""
