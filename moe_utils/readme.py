"""README's results passages, written from ``figures/*.csv`` so that every number in them comes from a run.

    python -m moe_utils.readme            # rewrite the generated blocks of README.md from figures/
    python -m moe_utils.readme --check    # exit 1 when README.md differs from what figures/ gives

Each block sits between ``<!-- results:NN -->`` and ``<!-- /results:NN -->``; the text around the blocks (headings,
figures) holds no number. ``tests/test_readme.py`` renders every block from the committed CSVs and compares.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from .exp1.settings import FourModelsSettings, GateAnalysisSettings
from .io import paths
from .io.atomic import atomic_path
from .io.report import share, signed
from .stats import every_seed_detectable, mean_std, mean_std_text
from .studies.expert_load.settings import PAPER_SHAPE, ExpertLoadSettings
from .studies.head_importance.method import matched_condition
from .studies.head_importance.settings import HeadImportanceSettings
from .studies.layer_activation.settings import LayerActivationSettings
from .studies.routing_stability.settings import StabilitySettings

BLOCK = re.compile(r"(<!-- results:(\d\d) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)
GATES = ("linear gate", "1-hidden-layer gate")
MASK, PROBE, CONTROL = "head-mask gradient", "probe gradient × activation", "shuffled-label probe (control)"
DOMAINS = {"wikipedia": "Wikipedia", "github": "GitHub", "dm_mathematics": "DM Mathematics"}


class Figures:
    """The CSV/JSON tables of one figures folder, read once each."""

    def __init__(self, folder: Path):
        self.folder, self.cache = Path(folder), {}

    def __call__(self, name: str) -> pd.DataFrame:
        if name not in self.cache:
            self.cache[name] = pd.read_csv(self.folder / f"{name}.csv")
        return self.cache[name]

    def json(self, name: str) -> dict:
        """A JSON table (``08_*_info``)."""
        return json.loads((self.folder / f"{name}.json").read_text())


def margin(row, scale: float = 1.0, decimals: int = 3, unit: str = "") -> str:
    """ "+0.238 ± 0.035 (higher in 5 of 5 seeds)" from a paired-margins row."""
    mean, std, n = row["mean"] * scale, row["std"] * scale, int(row["n"])
    side, count = ("higher", int(row["holds"])) if mean >= 0 else ("lower", int(row["below"]))
    return f"{signed(mean, decimals)} ± {std:.{decimals}f}{unit} ({side} in {count} of {n} seeds)"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def section_02(f: Figures) -> str:
    """Notebook 02: final accuracy and activation rates beside source 004's."""
    s = FourModelsSettings()
    final = f("02_final_accuracy").set_index("model")
    rates = f("02_activation_rates")
    test = rates[rates["split"] == "test"].set_index(["model", "dataset", "expert"]).sort_index()
    gap = (rates[rates.split == "train"].set_index(["model", "dataset", "expert"])["ours"] - test["ours"]).abs().max()
    rate_rows = [
        [
            m,
            d,
            f"{test.loc[(m, d, 1), 'ours']:.2f}",
            f"{test.loc[(m, d, 2), 'ours']:.2f}",
            f"{test.loc[(m, d, 1), 'source_004']:.2f}",
            f"{test.loc[(m, d, 2), 'source_004']:.2f}",
        ]
        for m in ("pre-designed gate", *GATES)
        for d in ("MNIST", "CIFAR")
    ]
    t = final["test"]
    learned = all(t[g] > t["pre-designed gate"] for g in GATES)
    mixtures = all(t[m] > t["single expert"] for m in ("pre-designed gate", *GATES))
    lin = test.loc[("linear gate", "CIFAR"), "ours"]
    return f"""Final accuracy after {s.epochs} epochs (Adam, lr {s.lr:g}, batch {s.batch_size}, TF-style Glorot-uniform init;
seed {s.seed}; mirror data) — `figures/02_final_accuracy.csv`:

{table(["model", "train", "test"], [[m, f"{r.train:.3f}", f"{r.test:.3f}"] for m, r in final.iterrows()])}

Activation rates ActivationRate(i|D) = mean G(X)_i over D (test split; train differs by at most {gap:.3f}) —
`figures/02_activation_rates.csv`:

{table(["model", "dataset", "ours: expert 1", "ours: expert 2", "source 004: expert 1", "source 004: expert 2"], rate_rows)}

Source 004's orderings at seed {s.seed}: learned gates {"beat" if learned else "do **not** both beat"} the pre-designed gate
({signed(t["linear gate"] - t["pre-designed gate"], 4)} and {signed(t["1-hidden-layer gate"] - t["pre-designed gate"], 4)} test
accuracy); the mixtures {"all beat" if mixtures else "do **not** all beat"} the single expert, the pre-designed gate by
{signed(t["pre-designed gate"] - t["single expert"], 4)}. Our linear gate splits CIFAR {lin[1]:.2f} / {lin[2]:.2f}
where source 004's is {test.loc[("linear gate", "CIFAR"), "source_004"][1]:.2f} /
{test.loc[("linear gate", "CIFAR"), "source_004"][2]:.2f}. One seed: notebook 03 checks both across seeds."""


def digits_by_expert(routing: pd.DataFrame, model: str, hard: float = 0.9) -> tuple[list, list]:
    """The first dataset's classes (0-9) whose weight goes to expert 1 / expert 2 (≥ ``hard``) under ``model``."""
    part = routing[(routing["model"] == model) & (routing["class"] < 10)]
    wide = part.pivot(index="class", columns="expert", values="rate")
    return [int(c) for c in wide.index[wide[1] >= hard]], [int(c) for c in wide.index[wide[2] >= hard]]


def section_03(f: Figures) -> str:
    """Notebook 03: source 004's run over seeds, how hard the gates decide, and what makes the split hard."""
    s = GateAnalysisSettings()
    finals = f("03_final_accuracy_seeds")
    n = finals.seed.nunique()
    acc = finals.groupby("model", sort=False)["test"]
    accuracy = ", ".join(f"{mean_std(acc.mean()[m], acc.std()[m])} ({m})" for m in acc.mean().index)
    claims = f("03_claims_seeds").set_index("claim (test accuracy)")

    def claim(c):
        r = claims.loc[c]
        return (
            f"{int(r.holds_in)}/{int(r.seeds)} seeds, {signed(100 * r.margin_mean)} ± {100 * r.margin_std:.1f} points"
        )

    summary = f("03_gate_weight_summary")
    mnist = summary[(summary.split == "test") & (summary.dataset == "MNIST") & (summary.model == GATES[1])]
    one, two = digits_by_expert(f("03_class_routing"), GATES[1])
    hard = f("03_hard_split")
    full = hard[(hard.table == "final, per seed") & hard.variant.str.startswith("02 setting, full data")]
    cifar = full[(full.split == "test") & (full.dataset == "CIFAR")]
    hard_in = {g: int((cifar[cifar.model == g].majority_share >= 0.97).sum()) for g in GATES}
    hs = f("03_hard_split_summary").set_index(["variant", "model"])
    every = [v for (v, m), r in hs.iterrows() if m == GATES[0] and r.seed_like == r.runs]
    ours, raw = "02 setting: tf init, Adam 1e-3, pixels/255", "raw pixels 0-255"
    cost = 100 * (hs.loc[(raw, GATES[0]), "test_accuracy_mean"] - hs.loc[(ours, GATES[0]), "test_accuracy_mean"])
    epochs = hard[(hard.table == "per epoch, training batches") & hard.variant.str.startswith("02 setting, full data")]
    epochs = epochs[epochs.dataset == "CIFAR"].groupby(["model", "epoch"])["majority_share"].mean()
    softer = all(epochs[g].iloc[-1] <= epochs[g].iloc[0] + 0.01 for g in GATES)
    sweep = f("03_expert_sweep")
    test = sweep[sweep.split == "test"]
    big = test[(test.n_experts == test.n_experts.max()) & (test.experts == "mlp")]
    best = big.groupby("model")["test"].first().max()
    single = test[(test.n_experts == 1) & (test.experts == "linear")]["test"].iloc[0]
    majority = test[test.n_experts == test.n_experts.max()]["majority_share"].max()
    strat = f("03_gate_strategies").set_index("model")
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


def section_04(f: Figures) -> str:
    """Notebook 04: the baseline's Jaccard under the three noise placements and the regulariser's paired margins."""
    s = StabilitySettings()
    band = f("04_jaccard_seeds").set_index(["run", "noise_at", "sigma"])
    sig = [x for x in (0.1, 0.5, 1.0, 2.0) if ("baseline", "router input", x) in band.index]
    cells = lambda where: " / ".join(  # noqa: E731
        mean_std(band.loc[("baseline", where, x), "jaccard_mean"], band.loc[("baseline", where, x), "jaccard_std"])
        for x in sig
    )
    per_seed = f("04_stability_seeds")
    n = per_seed.seed.nunique()
    runs = {r: g for r, g in per_seed.groupby("run")}
    lam, bal = s.lam_run, s.balanced_run
    m = f("04_paired_margins").set_index(["a", "b", "value"])
    points = dict(scale=100, decimals=1, unit=" points")
    collapsed = int((runs[lam].experts_used_layer1 <= s.top_k + 0.05).sum())
    tradeoff = f("04_stability_tradeoff").set_index("run")
    sweep = tradeoff[
        (tradeoff.kind == "consistency") & (tradeoff.balance_alpha == 0) & (tradeoff.surrogate == s.surrogate)
    ]
    gone = (sweep.experts_used_layer1 <= s.top_k + 0.05).sum()
    other = tradeoff[(tradeoff.surrogate != s.surrogate) & (tradeoff.lam > 0)]
    noisy, base = tradeoff.loc["noisy top-k"], tradeoff.loc["baseline"]
    j = lambda run: runs[run].jaccard.mean()  # noqa: E731
    return f"""A {s.n_layers}-layer transformer on {s.patch}×{s.patch} image patches ({(32 // s.patch) ** 2} tokens) with an MoE
feed-forward layer in each block ({s.n_experts} SwiGLU experts, top-{s.top_k}, {s.scoring} router) is trained on MNIST + CIFAR
for {s.steps} steps and then on until its routers settle (at most {s.settle_factor}×; below). Input noise x' = x + ε,
ε ~ N(0, σ²I), and the top-{s.top_k} sets E, E' are compared by the Jaccard index |E ∩ E'| / |E ∪ E'|. Three
placements of the noise, each named for what it is: the main measure perturbs **each MoE layer's router input** (after
attention, one layer at a time); **the source's placement** perturbs each MoE block's input hidden state (before
attention, σ relative to the whole sequence's RMS) and re-runs that block only; and **pixel noise** perturbs the image
patches (σ relative to each patch's RMS, so all-black patches get none) and re-runs the whole model. σ is relative in
all three, which the source does not say. Headline numbers are mean ± std over **{n} seeds**,
margins paired by seed (`figures/04_stability_seeds.csv`, `figures/04_paired_margins.csv`).

* **A trained router is noticeably noise-sensitive**: baseline mean Jaccard {cells("router input")} at
  σ = {" / ".join(f"{x:g}" for x in sig)} (J = 1 exactly at σ = 0); at σ = {s.eval_sigma:g},
  {mean_std_text(runs["baseline"].changed, 1, 100)} % of tokens change their expert set. **At the block input (the
  source's placement)** J = {cells("block input")} ({mean_std_text(runs["baseline"].changed_block_input, 1, 100)} %
  changed at σ = {s.eval_sigma:g}); **with pixel noise** J = {cells("model input")}
  ({mean_std_text(runs["baseline"].changed_model_input, 1, 100)} % changed). The three σ axes are relative to different
  things, so they are not the same physical noise. Source 003 gives no numbers to compare; its picture of E, E', E ∩ E', E ∪ E' is
  `figures/04_selection_grids.png`.
* **The consistency regulariser** (soft Jaccard of softmax-standardised router logits on x and x', λ = {s.seed_lambda:g})
  raises J(σ = {s.eval_sigma:g}) by {margin(m.loc[(lam, "baseline", "jaccard")])} for
  {margin(m.loc[(lam, "baseline", "acc")], **points)} — **but by collapsing layer 1 onto {s.top_k} experts in {collapsed} of
  {n} seeds** ({runs[lam].experts_used_layer1.mean():.2f} of {s.n_experts} experts used, against
  {runs["baseline"].experts_used_layer1.mean():.2f} for the baseline). **With the sequence-wise balance loss**
  (α = {s.balance_alpha:g}; {runs[bal].experts_used_layer1.mean():.2f} experts used): J {j("baseline + balance"):.3f} →
  {j(bal):.3f}, {margin(m.loc[(bal, "baseline + balance", "jaccard")])} over its balanced baseline, with noise at the block input
  {margin(m.loc[(bal, "baseline + balance", "jaccard_block_input")])} and with pixel noise
  {margin(m.loc[(bal, "baseline + balance", "jaccard_model_input")])}, at
  {margin(m.loc[(bal, "baseline + balance", "acc")], **points)}. The balance loss alone moves the baseline's J
  {j("baseline"):.3f} → {j("baseline + balance"):.3f}, so against the *plain* baseline the balanced regularised model gains
  {margin(m.loc[(bal, "baseline", "jaccard")])} for {margin(m.loc[(bal, "baseline", "acc")], **points)}
  (`figures/04_tradeoff_seeds.png`).
* **Settled routers.** {settling_text(f, s)}
* Single-seed sweeps (seed {s.seed}, said so in the notebook): {gone} of {len(sweep)} runs of the λ and training-σ sweeps
  collapse layer 1; the router's own softmax as surrogate reaches J {other.jaccard.iloc[0]:.3f}; noisy top-k gating
  (Shazeer et al. 2017) {"does not stabilise" if noisy.jaccard <= base.jaccard + 0.02 else "stabilises"} routing
  (J {noisy.jaccard:.3f} vs {base.jaccard:.3f})."""


def settling_text(f: Figures, s: StabilitySettings) -> str:
    """Whether 04's routers settled within SETTLE_FACTOR × STEPS, and the regulariser's gain after STEPS and at the end."""
    st = f("04_settling")
    m = f("04_paired_margins").set_index(["a", "b", "value"])
    settled, limit = st[st.settled], st[~st.settled]
    bal = s.balanced_run
    limit_text = (
        f"{len(limit)} stopped at the limit of {s.settle_factor * s.steps:,} steps with "
        f"{100 * limit.changed_at_end.min():.0f}–{100 * limit.changed_at_end.max():.0f} % of probe tokens still changing "
        f"between checks (after {s.steps} steps: {100 * limit.changed_at_steps.min():.0f}–"
        f"{100 * limit.changed_at_steps.max():.0f} %)"
        if len(limit)
        else "none reached the limit"
    )
    return (
        f"Every run trains past its {s.steps} steps until fewer than {100 * s.settled_change:.0f} % of the probe tokens "
        f"change their expert set between checks {s.fluct_every} steps apart, at most {s.settle_factor}× as long: "
        f"{len(settled)} of {len(st)} runs settled; {limit_text}. Every number above is measured at the end "
        f"(`figures/04_settling.csv`). The balanced regulariser's gain in J over its balanced baseline is "
        f"{margin(m.loc[(bal, 'baseline + balance', 'jaccard_at_steps')])} after {s.steps} steps and "
        f"{margin(m.loc[(bal, 'baseline + balance', 'jaccard')])} at the end."
    )


def grid_text(f: Figures) -> str:
    """05's α × γ grid at one seed per shape: in how many cells aux-loss-free balances better and specialises more."""
    grid = f("05_alpha_gamma_grid")
    parts = [
        f"{shape}: lower MaxVio in {int((g.heldout_maxvio_difference < 0).sum())} of {len(g)} cells, higher "
        f"specialisation in {int((g.specialisation_difference > 0).sum())} of {len(g)}"
        for shape, g in grid.groupby("shape", sort=False)
    ]
    rates = sorted(set(grid.alpha) | set(grid.gamma))
    return (
        f"**How much depends on α and γ** (a 2 × 2 grid, α, γ ∈ {{{', '.join(f'{r:g}' for r in rates)}}}, one seed per cell and "
        f"shape, `figures/05_alpha_gamma_grid.csv`): aux-loss-free against aux-loss-based, {'; '.join(parts)}."
    )


def section_05(f: Figures) -> str:
    """Notebook 05: specialisation and balance of aux-loss-based vs aux-loss-free models, over seeds and documents."""
    s = ExpertLoadSettings()
    seeds = f("05_specialisation_seeds")
    n = seeds.seed.nunique()
    stats = seeds.groupby(["config", "method"])[["specialisation", "max_relative_load", "heldout_maxvio"]]
    mean, std = stats.mean(), stats.std()
    corpus = f("05_corpus").set_index("domain")
    pm = f("05_paired_margins").set_index(["config", "value"])
    boot = f("05_document_bootstrap").set_index(["config", "statistic", "method"])
    configs = list(dict.fromkeys(seeds.config))
    shapes = s.shapes
    shape_rows = f("05_shapes").set_index("shape")
    active = int(shape_rows.loc["standard", "active expert parameters per layer"])
    total_ratio = (
        shape_rows.loc["fine-grained", "total expert parameters per layer"]
        / shape_rows.loc["standard", "total expert parameters per layer"]
    )

    def cell(config, method):
        spec = mean_std(mean.loc[(config, method), "specialisation"], std.loc[(config, method), "specialisation"])
        bold = "**" if method == "aux_free" else ""
        return f"specialisation {bold}{spec}{bold}, max relative load {mean.loc[(config, method), 'max_relative_load']:.2f}"

    header = ["", "DeepSeek-V3 (paper)"] + [
        f"{c} ({shapes[c]['n_experts']} experts, top-{shapes[c]['top_k']}), {n} seeds" for c in configs
    ]
    rows = [
        ["aux-loss-based", "loads near 1 in every domain", *(cell(c, "aux_loss") for c in configs)],
        ["aux-loss-free", "clearly domain-specific experts", *(cell(c, "aux_free") for c in configs)],
    ]
    diff = "aux_free − aux_loss"
    every = all(
        pm.loc[(c, "specialisation"), "holds"] == n and boot.loc[(c, "specialisation", diff), "ci_low"] > 0
        for c in configs
    )
    spec = " and ".join(f"{margin(pm.loc[(c, 'specialisation')])} ({c})" for c in configs)
    intervals = " and ".join(
        f"[{boot.loc[(c, 'specialisation', diff), 'ci_low']:.3f}, "
        f"{boot.loc[(c, 'specialisation', diff), 'ci_high']:.3f}]"
        for c in configs
    )
    maxvio = "; ".join(
        f"{mean.loc[(c, 'aux_free'), 'heldout_maxvio']:.3f} vs {mean.loc[(c, 'aux_loss'), 'heldout_maxvio']:.3f}"
        f" {c}, {margin(pm.loc[(c, 'heldout_maxvio')])}"
        for c in configs
    )
    domains = [d for d in corpus.index]
    loss = "; ".join(
        f"{c}: " + ", ".join(f"{DOMAINS.get(d, d)} {margin(pm.loc[(c, f'loss_{d}')])}" for d in domains)
        for c in configs
    )
    n_modules = len(str(corpus.loc["dm_mathematics", "dm_modules_used"]).split(","))
    docs = ", ".join(f"{int(corpus.loc[d, 'held_out_documents']):,} {DOMAINS.get(d, d)}" for d in domains)
    paper = PAPER_SHAPE
    paper_mv = (
        f"{mean.loc[(paper, 'aux_free'), 'heldout_maxvio']:.2f} loss-free against "
        f"{mean.loc[(paper, 'aux_loss'), 'heldout_maxvio']:.2f} with the loss ({n} seeds)"
    )
    row = boot.loc[(paper, "heldout_maxvio", diff)]
    paper_side = (
        "the papers' direction, with an interval over seeds and documents below 0"
        if row["ci_high"] < 0
        else "the **reverse** of the papers' direction (interval above 0)"
        if row["ci_low"] > 0
        else "no difference established (the interval includes 0)"
    )
    return f"""Byte-level MoE language models ({s.n_layers} layers, sigmoid affinities and one shared expert as in DeepSeek-V3),
identical but for balancing — a sequence-wise auxiliary loss (α = {s.alpha:g}) versus DeepSeek-V3's auxiliary-loss-free bias
(b_i += γ·sign(mean load − load_i), γ = {s.gamma:g}) — are trained on equal byte budgets
({int(corpus["train_tokens"].iloc[0]):,} bytes per domain) of Wikipedia (WikiText-2), GitHub-style code (the Python standard
library) and DM Mathematics (`mathematics_dataset`, {n_modules} modules),
{s.steps:,} steps each, in three configurations: **standard** ({s.n_experts} routed SwiGLU experts of width 32, top-{s.top_k},
N/K = {s.n_experts / s.top_k:g}, one shared expert), the same at **the papers' rates** (α = γ = {s.paper_rates:g}, Wang et al.
2024's), and **fine-grained**, nearer DeepSeek-V3 ({s.fine_n_experts} experts of width {s.fine_d_expert}, top-{s.fine_top_k},
N/K = {s.fine_n_experts / s.fine_top_k:g}, {s.fine_n_shared} shared experts of width {s.fine_d_expert}: the same
{active:,} active expert parameters per layer as the standard shape, {total_ratio:.1f}× its total; `figures/05_shapes.csv`).
{n} seeds per model; the held-out text is {docs} documents (each cut to {s.held_out_doc_bytes:,} bytes), and a two-stage
bootstrap (the seeds, then the documents within each domain) gives 95 % intervals that hold the spread between trained
models as well as between documents (`figures/05_document_counts.npz` holds the counts they come from).
Relative expert load = tokens routed to the expert / (K·T_D/N):

{table(header, rows)}

The paper's finding — greater expert specialisation with auxiliary-loss-free balancing —
{"**reproduces in both shapes, in every seed**" if every else "does **not** reproduce in every seed and shape"}: the paired
difference is {spec}, with 95 % intervals over seeds and documents of {intervals} (specialisation = std across domains of each
expert's relative load, averaged over experts and layers; `figures/05_document_bootstrap.png`,
`figures/05_expert_load_fine.png`). Held-out MaxVio (aux-loss-free vs aux-loss-based, domains pooled): {maxvio}.
**Beside the papers:** Wang et al. 2024 (arXiv:2408.15664, Table 2) report MaxVio over the validation set of 0.04
loss-free against 0.72 with the auxiliary loss at 1B parameters and 0.04 against 0.52 at 3B (α = u = 0.001;
DeepSeek-V3 uses γ = 0.001); at those rates our standard shape gives {paper_mv} — {paper_side}.
{grid_text(f)}
Held-out loss, aux-loss-free − aux-loss-based (nats/byte): {loss} (`figures/05_paired_margins.csv`). The contrast is
smaller than the paper's (its colour scale reaches ~10; ours cannot exceed N/K): tiny models and short training. Where
the extracted source text disagrees with the paper (it says the two methods' heatmaps look alike and that DM Mathematics
has "higher load", while relative load averages exactly 1 over experts in every domain by definition), the notebook
follows the paper."""


def section_06(f: Figures) -> str:
    """Notebook 06: learning, the probe against a no-signal control, the ablation against random and layer-matched
    random heads, function specificity, and Math's maps."""
    s = HeadImportanceSettings()
    st = f("06_seeds")
    n = len(st)
    acc = f("06_accuracy").set_index("task")
    best = acc[["chance", "majority"]].max(axis=1)
    unlearned = acc[acc["held-out accuracy"] <= best + 0.05]
    layer1 = {}
    for name, method in (("06_head_importance", PROBE), ("06_head_importance_maskgrad", MASK)):
        t = f(name)
        shares = t[t.layer == 1].groupby("task")["share"].sum()  # layers numbered from 1
        layer1[method] = f"{share(shares.min())}–{share(shares.max())}"
    abl = f("06_ablation_seeds").groupby("condition", sort=False)["drop"]
    top = {m: f"top-{s.top_heads} ({m})" for m in (MASK, PROBE, CONTROL)}
    rnd = next(c for c in abl.mean().index if c.startswith("random"))
    drops = abl.mean(), abl.std()
    d = lambda c: mean_std(drops[0][c], drops[1][c])  # noqa: E731
    wide = f("06_ablation_seeds").pivot_table(index="seed", columns="condition", values="drop")

    def vs_random(method, control=None):
        diff = wide[top[method]] - wide[control or rnd]
        side = "higher" if diff.mean() >= 0 else "lower"
        count = int((diff > 0).sum()) if diff.mean() >= 0 else int((diff < 0).sum())
        return f"{signed(diff.mean(), 3)} ± {diff.std():.3f} ({side} in {count} of {n} seeds)"

    def math(tag):
        cos, deep, mean_deep = (
            st[f"{tag}: math cos − others cos"],
            st[f"{tag}: math depth − max other depth"],
            st[f"{tag}: math depth − others' mean depth"],
        )
        return (
            int((cos < 0).sum()),
            int((mean_deep > 0).sum()),
            int((deep > 0).sum()),
            mean_std_text(cos),
            mean_std_text(mean_deep, 2),
        )

    mc, pc = math("mask"), math("probe")
    holds = all(x[2] == n and x[0] == n for x in (mc, pc))
    matched = lambda m: matched_condition(s.top_heads, m)  # noqa: E731
    above = {m: (wide[top[m]] - wide[matched(m)] > 0).sum() for m in (MASK, PROBE)}
    beyond = (
        "the top heads cost more than their layers' random heads in every seed, for both rankings"
        if all(v == n for v in above.values())
        else f"**not** established beyond the layers (higher in {above[MASK]} and {above[PROBE]} of {n} seeds)"
    )
    spec_margins = f("06_specificity_margins").set_index("method")

    def spec(method):
        m = spec_margins.loc[method]
        side = "higher" if m["mean"] >= 0 else "lower"
        count = int(m["holds"]) if m["mean"] >= 0 else int(m["below"])
        return f"{signed(m['mean'], 3)} ± {m['std']:.3f} ({side} in {count} of {int(m['n'])} seeds)"

    both = all(spec_margins.loc[m, "holds"] == spec_margins.loc[m, "n"] for m in (MASK, PROBE))
    specific = (
        "**Heads specific to a function: supported** in every seed for both methods."
        if both
        else "**Heads specific to a function: not supported in every seed.**"
    )
    over = f("06_top_head_overlap")
    overlap = over[over["task a"] != over["task b"]].groupby("method")["shared heads"].mean()

    names = " and ".join(unlearned.index) or "none"
    return f"""Eight generated task families, one per cognitive function of "Cognitive Mirrors" (arXiv:2512.10978) — knowledge
recall, retrieval, logical reasoning, decision-making, semantic and syntactic understanding, inference, arithmetic —
train one small transformer ({s.n_layers} layers × {s.n_heads} heads, the shared block with a {s.ffn} FFN, {s.steps:,}
steps). Head importance per task is measured two ways: the paper's task probe (gradient × activation of each head's output)
and Michel et al.'s head-mask gradient; each map is normalised to sum to 1 over heads. The held-out prompts are split in
two disjoint halves: the maps (and each task's top heads) come from one, the ablation is measured on the other. A
shuffled-label probe is a no-signal control. **{n} seeds** (task world, prompts, model, probes); `figures/06_seeds.csv`.

* **Learning.** Mean held-out accuracy over the eight families {mean_std_text(st["mean held-out accuracy"])}; at seed
  {s.seed}, {len(acc) - len(unlearned)} families are learned clearly above chance and majority (+0.05); not learned:
  {names}, so their maps say little. Share of each function's importance in the **first layer** (seed {s.seed}):
  probe {layer1[PROBE]}, head mask {layer1[MASK]} (uniform {share(1 / s.n_layers)}).
* **The probe against a no-signal control.** The task probe separates the families with held-out accuracy
  {mean_std_text(st["probe held-out accuracy"])}; the shuffled-label probe reaches
  {mean_std_text(st["control probe held-out accuracy"])} (chance {1 / 8:.3f}), and its maps correlate with the real probe
  maps at r = {mean_std_text(st["control correlation (task mean)"], 2)} — that much of a probe map's pattern appears without
  any task signal. It is not a format control: each family has its own prompt format, so format and function coincide
  and no map here separates them.
* **Ablation on prompts that did not pick the heads**: masking each task's {s.top_heads} top heads (of
  {s.n_layers * s.n_heads}) costs {d(top[MASK])} accuracy (head-mask ranking) and {d(top[PROBE])} (probe ranking), against
  {d(rnd)} for {s.top_heads} random heads — paired margins {vs_random(MASK)} and {vs_random(PROBE)}; the shuffled-label
  probe's top heads cost {d(top[CONTROL])}, against random heads {vs_random(CONTROL)} (`figures/06_ablation_seeds.png`).
  **Against random heads in the same layers** as each task's top heads, the margins are {vs_random(MASK, matched(MASK))}
  (head mask) and {vs_random(PROBE, matched(PROBE))} (probe): {beyond}.
* **Function specificity** (each task's top heads masked, every task measured; `figures/06_cross_ablation.png`): the
  task whose heads are masked loses {spec(MASK)} (head mask) and {spec(PROBE)} (probe) more than the other seven, paired
  by seed; two tasks' top-{s.top_heads} sets share {overlap[MASK]:.1f} (head mask) and {overlap[PROBE]:.1f} (probe) heads on
  average. {specific}
* **"Math uses different, deeper heads" is {"supported" if holds else "not supported"}** at this scale: under the head-mask
  gradient Math is less similar to the other functions than they are to each other in {mc[0]} of {n} seeds (difference
  {mc[3]}) and deeper than their mean in {mc[1]} of {n} ({mc[4]} layers), deeper than every other function in {mc[2]} of {n};
  under the probe, {pc[0]}, {pc[1]} and {pc[2]} of {n} (`figures/06_task_similarity.png`). {arithmetic_text(st, s)}"""


def arithmetic_text(st: pd.DataFrame, s: HeadImportanceSettings) -> str:
    """06's longer arithmetic training and the every-seed depth rule's power at what it reached."""
    reached = int((st["math selection accuracy at the end"] >= s.math_target).sum())
    deeper = st["mask: math depth − others' mean depth"]
    return (
        f"Every seed trained past its {s.steps:,} steps until Math reached {s.math_target:g} accuracy on the selection "
        f"half, at most {s.train_factor}× as long: {reached} of {len(st)} seeds reached it, and Math's held-out accuracy "
        f"ends at {mean_std_text(st['math held-out accuracy'])}. With the seeds' spread of the depth difference "
        f"({deeper.std(ddof=1):.2f} layers, head mask), the every-seed rule has 80 % power only for a true difference "
        f"≥ {every_seed_detectable(float(deeper.std(ddof=1)), len(st)):.2f} layers."
    )


def section_07(f: Figures) -> str:
    """Notebook 07: the plateau by one rule, the trends over every checkpoint of the raw and the scale-free per-layer
    quantities, and source 002's claim as written with our answer (the Findings' own functions, on the CSVs)."""
    from types import SimpleNamespace

    from .studies.layer_activation.report import GRADIENT, SCALE_FREE, source_claim, trend_line

    s = LayerActivationSettings()
    plateaus = f("07_plateau")
    n = len(plateaus)
    progress = f("07_checkpoint_accuracy")
    acc = "held-out accuracy, all prompts (mean of 8)"
    first_step, last_step = int(progress.step.min()), int(progress.step.max())
    done = plateaus["plateaued"] == "yes"
    gains = plateaus.set_index("seed")["gain over the last quarter"]
    still = ", ".join(f"{signed(gains[seed], 3)} (seed {seed})" for seed in plateaus.loc[~done, "seed"])
    layers = f("07_layer_activation")
    clipped = layers[layers["importance share per head"] > s.share_clip]
    t = SimpleNamespace(settings=s, plateaus=plateaus, rank_summary=f("07_rank_trends"))
    trends = "; ".join(trend_line(t, q) for q in (GRADIENT, "raw mean |residual update|", *SCALE_FREE))
    return f"""Source 002's heatmap (layers 1–12 × training steps, values 0–0.008, early layers flat, later layers rising) has no
known source model. We train a {s.n_layers}-layer × {s.n_heads}-head model of the shared block on notebook 06's tasks for
{s.steps:,} steps with {s.n_checkpoints} evenly spaced checkpoints, **{n} seeds**, and compute per layer and checkpoint (a)
its share of total head importance (head-mask gradient) per head, which sums to 1 over the {s.n_layers * s.n_heads} heads
at every checkpoint, (b) the **raw** mean |∂L/∂m_h| of its heads, (c) the raw mean |residual-stream update|, and their
**scale-free** versions: (d) (b) divided by the mean loss it is the gradient of, (e) ‖update‖ / ‖residual‖ per token.
A trend is read over **every** checkpoint: Spearman's ρ of a layer's value with the step, "rising" when ρ > 0.5 in every
seed.

* **Plateau, by one rule** (the least-squares gain over the last quarter of the checkpoints at most twice the sampling
  error of a difference of two accuracies, ≈ {plateaus["threshold (2 sampling errors)"].mean():.3f}): accuracy on all
  held-out prompts rises from {mean_std_text(progress[progress.step == first_step][acc], 2)} (step {first_step:,}) to
  {mean_std_text(plateaus["final accuracy"], 2)} (step {last_step:,}); {int(done.sum())} of {n} seeds have plateaued
  {f"(gains {mean_std_text(gains[done.to_numpy()], 3)})" if done.any() else ""}{f"; still rising: {still}" if still else ""}
  (`figures/07_plateau.csv`).
* **The scale matches by construction**: a share per head averages 1/{s.n_layers * s.n_heads} ≈
  {1 / (s.n_layers * s.n_heads):.3f}, so landing on source 002's 0–0.008 says nothing. The share panel is clipped at
  {s.share_clip:g} with the clipped cells marked ({len(clipped)} cells of the plotted seed, in layer(s)
  {", ".join(map(str, sorted(clipped.layer.unique())))}); the other panels use log scales.
* **Trends over all checkpoints** (`figures/07_rank_trends.png`): {trends}.
* {source_claim(t)} (`figures/07_layer_activation_seeds.png`). We report the mismatch where there is one rather than tune
  the set-up until it appears."""


def real_model_rows(f: Figures) -> dict[str, list[str]]:
    """The notebook-08 table: measure -> one cell per model."""
    rows: dict[str, list[str]] = {}
    for m in ("smollm2", "gemma3"):
        acc, ab = f(f"08_{m}_accuracy"), f(f"08_{m}_ablation")
        spec, math = f(f"08_{m}_specificity").set_index("method"), f(f"08_{m}_math_vs_others").set_index("method")
        learned = acc[acc["learned"]]
        rows.setdefault("families above chance (of 8)", []).append(f"{len(learned)}")
        for r in acc.itertuples():
            rows.setdefault(f"accuracy: {r.family} (chance)", []).append(f"{r.accuracy:.2f} ({r.chance:.2f})")
        for method, short in ((MASK, "head-mask"), (PROBE, "probe")):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            rows.setdefault(f"{short}: top − layer-matched random drop, families with interval > 0", []).append(
                f"{int((part['low'] > 0).sum())} of {len(part)}"
            )
            sp, q = spec.loc[method], math.loc[method]
            rows.setdefault(f"{short}: own-family − other-family drop [95 %]", []).append(
                f"{signed(sp['difference'], 3)} [{sp['low']:.3f}, {sp['high']:.3f}]".replace("-", "−")
            )
            rows.setdefault(f"{short}: Math cos to others − others' among themselves", []).append(
                signed(q["math vs others (mean cos)"] - q["among the other seven (mean cos)"], 3)
            )
            rows.setdefault(f"{short}: Math depth centroid − others' mean (layers)", []).append(
                signed(q["math depth centroid"] - q["others' depth centroid (mean)"], 1)
            )
    return rows


def section_08(f: Figures) -> str:
    """Notebook 08: the real models' table and the paper's claims against it."""
    info = {m: f.json(f"08_{m}_info") for m in ("smollm2", "gemma3")}
    rows = real_model_rows(f)
    body = table(["measure", "SmolLM2-135M-Instruct", "Gemma 3 270M"], [[k, *v] for k, v in rows.items()])
    counts = {}
    for m in info:
        acc, ab = f(f"08_{m}_accuracy"), f(f"08_{m}_ablation")
        learned = acc[acc["learned"]]
        for method in (MASK, PROBE):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            counts[(m, method)] = f"{int((part['low'] > 0).sum())} of {len(part)}"
    spec = {(m, meth): f(f"08_{m}_specificity").set_index("method").loc[meth] for m in info for meth in (MASK, PROBE)}
    specific = all(r["low"] > 0 for r in spec.values())
    depth = [f(f"08_{m}_math_vs_others").set_index("method").loc[meth] for m in info for meth in (MASK, PROBE)]
    deltas = [d["math depth centroid"] - d["others' depth centroid (mean)"] for d in depth]
    residual = {m: f(f"08_{m}_layer_profile").set_index("layer")["relative residual update"] for m in info}
    top = {m: int(r.idxmax()) for m, r in residual.items()}
    a, b = info["smollm2"], info["gemma3"]
    return f"""Maps on the selection half ({a["selection prompts"]} prompts), ablations on the evaluation half
({a["evaluation prompts"]} prompts); top heads = 5 % of all heads ({a["k"]} of {a["layers"] * a["heads"]} in SmolLM2,
{b["k"]} of {b["layers"] * b["heads"]} in Gemma); the control masks as many random heads **in the same layers**; intervals
are 95 % bootstraps over prompts, since there is one pretrained model each. Families whose accuracy interval includes
chance are left out of the claims. From `figures/08_*_accuracy.csv`, `08_*_ablation.csv`, `08_*_specificity.csv` and
`08_*_math_vs_others.csv`:

{body}

**Against the paper's claims** (source `001`):
- *Masking a function's top heads hurts more than random heads*: with the layer-matched control this holds for the
  probe maps in {counts[("smollm2", PROBE)]} learned families of SmolLM2 and {counts[("gemma3", PROBE)]} of Gemma; for the
  head-mask-gradient maps in {counts[("smollm2", MASK)]} and {counts[("gemma3", MASK)]}.
- *Function-specific heads*: masking family A's heads costs family A more than the other families
  {"for both methods and both models (intervals above 0)" if specific else "not in every model and method"}; SmolLM2's
  head-mask off-diagonal drop is {spec[("smollm2", MASK)]["off-diagonal"]:.2f}.
- *Math Calculation uses different, deeper heads*: {"**not reproduced**" if max(deltas) <= 0 else "mixed"}: Math's depth
  centroid minus the others' mean is {signed(min(deltas), 1)} to {signed(max(deltas), 1)} layers over the two models and
  methods.
- Layer profile (source `002`): one final checkpoint cannot show training dynamics. The relative residual update is
  largest in layer {top["smollm2"]} for SmolLM2 ({residual["smollm2"].max():.1f}) and layer {top["gemma3"]} for Gemma
  ({residual["gemma3"].max():.1f})."""


SECTIONS = {
    "02": section_02,
    "03": section_03,
    "04": section_04,
    "05": section_05,
    "06": section_06,
    "07": section_07,
    "08": section_08,
}


def render(readme: str, figures: Path) -> str:
    """``readme`` with every generated block rewritten from the tables in ``figures``."""
    f = Figures(figures)
    return BLOCK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)](f) + "\n" + m.group(4), readme)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is not what figures/ gives")
    args = parser.parse_args(argv)
    path = paths.REPO_ROOT / "README.md"
    old = path.read_text()
    new = render(old, paths.figures_dir())
    if args.check:
        print(
            "README.md is up to date"
            if new == old
            else "README.md differs from figures/: run python -m moe_utils.readme"
        )
        return int(new != old)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(new)
    print(f"README.md: {len(BLOCK.findall(new))} results blocks written from {paths.figures_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
