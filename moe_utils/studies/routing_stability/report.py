"""Notebook 04's Findings, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

from ...datasets.mnist_cifar import slug
from ...io.report import margin, share, signed
from ...io.tables import Tables
from ...stats import margin_text, mean_std, mean_std_text
from .run import StabilityTables
from .settings import StabilitySettings

SHOWN_SIGMAS = (0.1, 0.5, 1.0, 2.0)


def collapsed(experts_used, top_k: int):
    """Flags of runs whose first MoE layer routes every token to the same ``top_k`` experts (exp-entropy ≤ k + 0.05)."""
    return experts_used <= top_k + 0.05


def noise_lines(t: StabilityTables) -> str:
    """Section 1: the baseline's Jaccard under the three noise placements, over seeds, and per layer at seed SEED."""
    s = t.settings
    band = t.band[t.band.run == "baseline"].set_index(["noise_at", "sigma"])
    sigmas = [x for x in SHOWN_SIGMAS if ("router input", x) in band.index]
    cell = lambda where, x: f"{band.loc[(where, x), 'jaccard_mean']:.3f} ± {band.loc[(where, x), 'jaccard_std']:.3f}"  # noqa: E731
    b_seeds = t.per_seed[t.per_seed.run == "baseline"]
    base = t.curves[t.curves.run == "baseline"]
    at = base[base.sigma == s.eval_sigma].set_index(["layer", "dataset"])["jaccard"]
    first, second = t.dataset_names
    one, two = slug(first), slug(second)
    last = s.n_layers  # layers numbered from 1
    router = " / ".join(cell("router input", x) for x in sigmas)
    block = " / ".join(cell("block input", x) for x in sigmas)
    model = " / ".join(cell("model input", x) for x in sigmas)
    by_layer = base[base.sigma == s.eval_sigma].groupby("layer")
    weighted = by_layer.apply(lambda g: (g.jaccard * g.tokens).sum() / g.tokens.sum(), include_groups=False)
    shown = " / ".join(f"{x:g}" for x in sigmas)
    return f"""
**1 · How noise-sensitive is a trained top-{s.top_k}-of-{s.n_experts} router?** Baseline over
{t.per_seed.seed.nunique()} seeds (mean ± std), layers and datasets pooled, noise at the router input: mean Jaccard
{router} at σ = {shown}; at σ = {s.eval_sigma:g}, {mean_std_text(b_seeds.changed, 1, 100)} % of tokens change their
expert set. σ = 0 gives J = 1 exactly (checked in the notebook).
**The source's placement** (x' = x + ε on each MoE block's input hidden state, before its attention, σ relative to
the rms of the whole sequence's input, only that block run again): J = {block} at the same σ,
{mean_std_text(b_seeds.changed_block_input, 1, 100)} % changed at σ = {s.eval_sigma:g}. **Noise on the pixel patches**
(σ relative to each patch's rms, so all-black patches get none; the whole model re-run, so the noise compounds): J =
{model}, {mean_std_text(b_seeds.changed_model_input, 1, 100)} % changed. The three placements differ in what σ is
relative to, so their σ axes are not the same physical noise: the comparison says where noise reaches the routers, not
which router is more fragile.
Per layer at σ = {s.eval_sigma:g} (seed {s.seed}, router input, token-weighted over datasets): layer 1
{weighted[1]:.3f}, last layer {weighted[last]:.3f} ({first} / {second} tokens: layer 1 {at[1, one]:.3f} / {at[1, two]:.3f},
last layer {at[last, one]:.3f} / {at[last, two]:.3f}).
"""


def regulariser_lines(t: StabilityTables) -> str:
    """Section 2: the regulariser's paired margins over seeds, with and without the balance loss."""
    s = t.settings
    m = t.margins.set_index(["a", "b", "value"])
    mg = lambda a, b, v, **kw: margin_text(m.loc[(a, b, v)].to_dict() | {"a": a, "b": b}, **kw)  # noqa: E731
    points = dict(scale=100, unit=" points", decimals=1)
    lam, bal = s.lam_run, s.balanced_run
    lam_seeds, bal_seeds = t.per_seed[t.per_seed.run == lam], t.per_seed[t.per_seed.run == bal]
    b_seeds = t.per_seed[t.per_seed.run == "baseline"]
    n_collapsed = int(collapsed(lam_seeds.experts_used_layer1, s.top_k).sum())
    return f"""
**2 · The regulariser over {t.per_seed.seed.nunique()} seeds** (λ = {s.seed_lambda:g}, {s.surrogate} surrogate, J at
σ = {s.eval_sigma:g}, paired differences mean ± std): without the balance loss, J {mg(lam, "baseline", "jaccard")} and accuracy
{mg(lam, "baseline", "acc", **points)}; layer 1 collapses onto {s.top_k} experts (exp-entropy of its load ≤ {s.top_k}.05) in
{n_collapsed} of {len(lam_seeds)} seeds ({mean_std_text(lam_seeds.experts_used_layer1, 2)} experts used, baseline
{mean_std_text(b_seeds.experts_used_layer1, 2)}). **With the balance loss** (α = {s.balance_alpha:g};
{mean_std_text(bal_seeds.experts_used_layer1, 2)} experts used in layer 1), against its balanced baseline:
J {mg(bal, "baseline + balance", "jaccard")}, accuracy {mg(bal, "baseline + balance", "acc", **points)};
against the plain baseline: J {mg(bal, "baseline", "jaccard")}, accuracy {mg(bal, "baseline", "acc", **points)}.
With noise at the block input (the source's placement) the gain is J
{mg(bal, "baseline + balance", "jaccard_block_input")}, and with noise on the pixels
{mg(bal, "baseline + balance", "jaccard_model_input")} (balanced pair). {sharpness_text(t.per_seed, s)}
{sigma_text(t.sigma_margins, s)}
"""


def sharpness_text(per_seed, s: StabilitySettings) -> str:
    """How the balanced regulariser's routers look beside its gain: top-1 probability against uniform, logit spread,
    and its training-time churn, against its balanced baseline."""
    runs = {r: g for r, g in per_seed.groupby("run")}
    bal, base = runs[s.balanced_run], runs["baseline + balance"]
    flat = bal.router_top1_prob.mean() < 1.5 / s.n_experts  # within 50 % of uniform
    return (
        f"Beside that gain, the balanced regulariser's routers are {'nearly flat' if flat else 'not flat'}: mean "
        f"top-1 router probability "
        f"{mean_std_text(bal.router_top1_prob)} (uniform {1 / s.n_experts:.3f}; balanced baseline "
        f"{mean_std_text(base.router_top1_prob)}), logit std {mean_std_text(bal.router_logit_std, 2)} "
        f"({mean_std_text(base.router_logit_std, 2)}); over the last quarter of training "
        f"{mean_std_text(bal.churn_last_quarter, 0, 100)} % of probe tokens changed experts between checks "
        f"{s.fluct_every} steps apart ({mean_std_text(base.churn_last_quarter, 0, 100)} %)."
    )


def sigma_text(margins, s: StabilitySettings) -> str:
    """The balanced regulariser's paired gain in J at every evaluation σ (trained at TRAIN_SIGMA only)."""
    part = margins[(margins.a == s.balanced_run) & (margins.b == "baseline + balance")].set_index("sigma")
    shown = [x for x in part.index if x in (0.1, 0.2, s.train_sigma, 1.0, 2.0)]
    cells = "; ".join(f"σ = {x:g}{' (trained)' if x == s.train_sigma else ''}: {margin(part.loc[x])}" for x in shown)
    above = int((part["holds"] == part["n"]).sum())
    return (
        f"**Untrained noise levels.** Trained at σ = {s.train_sigma:g} only, the balanced regulariser's gain in J over "
        f"its balanced baseline is {cells}; it is higher in every seed at {above} of {len(part)} evaluation σ "
        f"(`figures/04_margins_by_sigma.csv`)."
    )


def churn_lines(t: StabilityTables) -> str:
    """Training-time churn at the end of a schedule that decays the learning rate to 0: which runs settle and
    whether they collapsed; and what the routing noise costs the predictions."""
    s, ch = t.settings, t.churn
    steps, warmup = s.sizes["steps"], s.sizes["warmup_steps"]
    m = t.margins.set_index(["a", "b", "value"])
    mg = lambda a, b, v, **kw: margin_text(m.loc[(a, b, v)].to_dict() | {"a": a, "b": b}, **kw)  # noqa: E731
    settled = ch[ch.settled]
    both = int((ch.settled & ch.collapsed).sum())
    lam, bal = s.lam_run, s.balanced_run
    per_seed = t.per_seed
    runs = list(dict.fromkeys(per_seed.run))
    points = dict(scale=100, unit=" points", decimals=1)
    cost = "; ".join(
        f"{r} {mean_std_text(g.flipped, 1, 100)} % flipped, accuracy {mean_std_text(g.acc_change, 1, 100)} points"
        for r, g in ((r, per_seed[per_seed.run == r]) for r in runs)
    )
    return f"""
**Churn and settling.** Every run trains exactly {steps:,} steps, the learning rate warmed up over {warmup} steps and
decayed (cosine) to 0 at the last step, so every comparison is at equal steps. Churn = share of probe tokens whose expert
set changed since the check {s.sizes["fluct_every"]} steps before (the layer with the most changes): over the last
quarter of training {share(ch.churn_last_quarter.min())}–{share(ch.churn_last_quarter.max())} across the
{len(ch)} runs, at the last check {share(ch.churn_at_end.min())}–{share(ch.churn_at_end.max())}. {len(settled)} of
{len(ch)} runs settled (below {share(s.settled_change)} at the last check); {both} of the settled runs have layer 1
collapsed onto {s.top_k} experts, against {int(ch.collapsed.sum())} of {len(ch)} runs in all (`figures/04_churn.csv`).

**What the routing noise costs** (every router decides on its input plus noise at σ = {s.eval_sigma:g}, the experts
see the clean input; {t.per_seed.seed.nunique()} seeds, {s.sizes["n_test"]:,} test images): {cost}. The regulariser
changes the flipped share by {mg(lam, "baseline", "flipped", **points)} without the balance loss and by
{mg(bal, "baseline + balance", "flipped", **points)} with it (`figures/04_prediction_flips.png`).
"""


def sweep_lines(t: StabilityTables) -> str:
    """Sections 3–7 at seed SEED: the source's picture, routing fluctuation, the λ sweep, surrogate, noisy top-k."""
    s = t.settings
    table = t.table.set_index("run")
    b = table.loc["baseline"]
    regularised = table[(table.kind == "consistency") & (table.balance_alpha == 0) & (table.surrogate == s.surrogate)]
    gone = regularised[collapsed(regularised.experts_used_layer1, s.top_k)].index.tolist()
    per_token = t.grid.groupby("token")[["intersection", "union"]].sum()
    swapped = int(((per_token.intersection > 0) & (per_token.intersection < per_token.union)).sum())
    kept, lost = int((per_token.intersection == per_token.union).sum()), int((per_token.intersection == 0).sum())
    fluct = "; ".join(f"{r} {share(v)}" for r, v in t.fluctuation_summary["second_half_mean"].items())
    sweep = "; ".join(
        f"{r} {row.jaccard:.3f} / {row.acc:.3f} ({signed(100 * (row.acc - b.acc))} points)"
        for r, row in regularised.iterrows()
    )
    text = f"""
**3 · The source's picture** (seed {s.seed}). Of the {len(per_token)} tokens drawn at σ = {s.eval_sigma:g}, {swapped} swap part
of their expert set, {kept} keep it whole and {lost} lose it entirely.

**4 · Routing fluctuation** (seed {s.seed}). Share of probe tokens whose set changed since the previous check, second half of
training (layers pooled): {fluct}.

**5 · The λ sweep** (seed {s.seed} only; an accuracy difference of about a point is within seed spread, see the std above).
J(σ = {s.eval_sigma:g}) and test accuracy, baseline {b.jaccard:.3f} / {b.acc:.3f}: {sweep}.
Runs whose layer 1 routes every token to the same {s.top_k} experts: {", ".join(gone) if gone else "none"}.
"""
    other = table[(table.surrogate != s.surrogate) & (table.lam > 0)]
    if len(other):
        o = other.iloc[0]
        text += (
            f"\n**6 · Surrogate** (seed {s.seed}). The other surrogate ({o.surrogate}, λ = {o.lam:g}) reaches "
            f"J = {o.jaccard:.3f}, mean top-1 router probability {o.router_top1_prob:.3f} (uniform {1 / s.n_experts:.3f}).\n"
        )
    if "noisy top-k" in table.index:
        nk = table.loc["noisy top-k"]
        verdict = "not " if nk.jaccard <= b.jaccard + 0.02 else ""
        text += (
            f"\n**7 · Noisy top-k gating** (seed {s.seed}, one seed's observation: it is not in the seed study) is "
            f"{verdict}a stability method for input noise here: J = {nk.jaccard:.3f} vs {b.jaccard:.3f} "
            f"({signed(nk.jaccard - b.jaccard, 3)}), accuracy {nk.acc:.3f}.\n"
        )
    return text


def findings(t: StabilityTables) -> str:
    """Notebook 04's Findings (Markdown) from its tables."""
    return noise_lines(t) + regulariser_lines(t) + churn_lines(t) + sweep_lines(t)


def readme_section(saved: Tables) -> str:
    """Notebook 04: the baseline's Jaccard under the three noise placements and the regulariser's paired margins."""
    s = StabilitySettings()
    band = saved.read_back("band").set_index(["run", "noise_at", "sigma"])
    sig = [x for x in (0.1, 0.5, 1.0, 2.0) if ("baseline", "router input", x) in band.index]
    cells = lambda where: " / ".join(  # noqa: E731
        mean_std(band.loc[("baseline", where, x), "jaccard_mean"], band.loc[("baseline", where, x), "jaccard_std"])
        for x in sig
    )
    per_seed = saved.read_back("per_seed")
    n = per_seed.seed.nunique()
    runs = {r: g for r, g in per_seed.groupby("run")}
    lam, bal = s.lam_run, s.balanced_run
    m = saved.read_back("margins").set_index(["a", "b", "value"])
    points = dict(scale=100, decimals=1, unit=" points")
    collapsed = int((runs[lam].experts_used_layer1 <= s.top_k + 0.05).sum())
    tradeoff = saved.read_back("table").set_index("run")
    sweep = tradeoff[
        (tradeoff.kind == "consistency") & (tradeoff.balance_alpha == 0) & (tradeoff.surrogate == s.surrogate)
    ]
    gone = (sweep.experts_used_layer1 <= s.top_k + 0.05).sum()
    other = tradeoff[(tradeoff.surrogate != s.surrogate) & (tradeoff.lam > 0)]
    noisy, base = tradeoff.loc["noisy top-k"], tradeoff.loc["baseline"]
    j = lambda run: runs[run].jaccard.mean()  # noqa: E731
    return f"""A {s.n_layers}-layer transformer on {s.patch}×{s.patch} image patches ({(32 // s.patch) ** 2} tokens) with an MoE
feed-forward layer in each block ({s.n_experts} SwiGLU experts, top-{s.top_k}, {s.scoring} router) is trained on MNIST + CIFAR
for exactly {s.steps} steps (learning rate warmed up over {s.warmup_steps} steps, then decayed to 0 at the last step,
so every comparison is at equal steps). Input noise x' = x + ε,
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
  {sharpness_text(per_seed, s)}
* **What the noise costs the predictions.** {cost_text(saved, s)}
* **Churn and settling.** {churn_text(saved, s)}
* Single-seed sweeps (seed {s.seed}, said so in the notebook): {gone} of {len(sweep)} runs of the λ and training-σ sweeps
  collapse layer 1; the router's own softmax as surrogate reaches J {other.jaccard.iloc[0]:.3f}; noisy top-k gating
  (Shazeer et al. 2017) {"does not stabilise" if noisy.jaccard <= base.jaccard + 0.02 else "stabilises"} routing
  (J {noisy.jaccard:.3f} vs {base.jaccard:.3f}; one seed's observation)."""


def churn_text(saved: Tables, s: StabilitySettings) -> str:
    """04's churn at the end of training, which runs settled and whether they collapsed."""
    ch = saved.read_back("churn")
    settled = ch[ch.settled]
    return (
        f"Training-time churn (share of probe tokens changing experts between checks {s.fluct_every} steps apart) over "
        f"the last quarter of training is {100 * ch.churn_last_quarter.min():.0f}–"
        f"{100 * ch.churn_last_quarter.max():.0f} % across the {len(ch)} runs and "
        f"{100 * ch.churn_at_end.min():.0f}–{100 * ch.churn_at_end.max():.0f} % at the last check, after the learning "
        f"rate has decayed to 0; {len(settled)} of {len(ch)} runs settled (below {100 * s.settled_change:.0f} %), "
        f"{int(settled.collapsed.sum())} of them with layer 1 collapsed; the runs that did not settle are "
        f"{', '.join(dict.fromkeys(ch[~ch.settled].run)) or 'none'} (`figures/04_churn.csv`)."
    )


def cost_text(saved: Tables, s: StabilitySettings) -> str:
    """What router-input noise at EVAL_SIGMA costs the predictions, per seed-study run, and the regulariser's change."""
    per_seed = saved.read_back("per_seed")
    m = saved.read_back("margins").set_index(["a", "b", "value"])
    points = dict(scale=100, decimals=1, unit=" points")
    runs = {r: g for r, g in per_seed.groupby("run", sort=False)}
    base, bal = runs["baseline"], s.balanced_run
    return (
        f"With every router deciding on noisy input at σ = {s.eval_sigma:g} (the experts see the clean input), "
        f"{mean_std_text(base.flipped, 1, 100)} % of the baseline's test predictions flip and its accuracy changes by "
        f"{mean_std_text(base.acc_change, 1, 100)} points; the balanced regulariser changes the flipped share by "
        f"{margin(m.loc[(bal, 'baseline + balance', 'flipped')], **points)} "
        f"(`figures/04_prediction_flips.png`)."
    )


def headline(saved: Tables) -> str:
    """One sentence for the README: how noise-sensitive a trained router is, and what the regulariser does."""
    s = StabilitySettings()
    per_seed = saved.read_back("per_seed")
    runs = {r: g for r, g in per_seed.groupby("run")}
    n, lam = per_seed.seed.nunique(), s.lam_run
    m = saved.read_back("margins").set_index(["a", "b", "value"])
    collapsed = int((runs[lam].experts_used_layer1 <= s.top_k + 0.05).sum())
    return (
        f"a trained top-{s.top_k}-of-{s.n_experts} router changes the expert set of "
        f"{mean_std_text(runs['baseline'].changed, 1, 100)} % of tokens at σ = {s.eval_sigma:g} ({n} seeds); the "
        f"consistency regulariser changes the Jaccard index by {margin(m.loc[(lam, 'baseline', 'jaccard')])}, "
        f"collapsing layer 1 onto {s.top_k} experts in {collapsed} of {n} seeds, and test accuracy by "
        f"{margin(m.loc[(lam, 'baseline', 'acc')], scale=100, decimals=1, unit=' points')} (every run "
        f"{int(runs[lam].steps_trained.max()):,} steps); noise that changes the baseline's routing flips "
        f"{mean_std_text(runs['baseline'].flipped, 1, 100)} % of its predictions"
    )
