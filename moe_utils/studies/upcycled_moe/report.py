"""Notebook 09's Findings, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

import pandas as pd

from ...io.report import share, signed
from ...io.tables import Tables
from ...stats import mean_std_text
from .settings import DENSE, METHOD_LABELS, METHODS, UpcycledSettings

HEADLINE_SIGMA = 0.5  # the σ the prose quotes (notebook 04's headline σ)


def settings_of(t: Tables) -> UpcycledSettings:
    """The run's settings: the in-memory ones, or the committed defaults for saved tables."""
    return getattr(t, "settings", None) or UpcycledSettings()


def margin_row(t: Tables, comparison: str, value: str) -> pd.Series:
    """One row of the paired margins."""
    m = t.read_back("margins")
    return m[(m.comparison == comparison) & (m.value == value)].iloc[0]


def boot_row(t: Tables, statistic: str, method: str) -> pd.Series:
    """One row of the document bootstrap (trained models)."""
    b = t.read_back("bootstrap")
    return b[(b.statistic == statistic) & (b.method == method)].iloc[0]


def margin_text(row: pd.Series, decimals: int = 3) -> str:
    """ "+0.021 ± 0.004 (higher in 3 of 3 seeds; t [0.011, 0.031])"."""
    mean = row["mean"]
    side, count = ("higher", int(row["holds"])) if mean >= 0 else ("lower", int(row["below"]))
    return (
        f"{signed(mean, decimals)} ± {row['std']:.{decimals}f} ({side} in {count} of {int(row['n'])} seeds; "
        f"t-interval [{signed(row['t_low'], decimals)}, {signed(row['t_high'], decimals)}])"
    )


def established(t: Tables, statistic: str, value: str) -> tuple[bool, str]:
    """Whether aux_free − aux_loss of ``statistic`` excludes 0 by both the t-interval over seeds and the two-stage
    bootstrap over seeds and documents; and the sentence that says so."""
    row = margin_row(t, "aux_free − aux_loss (trained)", value)
    boot = boot_row(t, statistic, "aux_free − aux_loss")
    both = (
        row["t_low"] * row["t_high"] > 0 and boot["ci_low"] * boot["ci_high"] > 0 and row["t_low"] * boot["ci_low"] > 0
    )
    return both, (
        f"{margin_text(row)}, two-stage bootstrap over seeds and documents [{signed(boot['ci_low'], 3)}, "
        f"{signed(boot['ci_high'], 3)}]: {'established' if both else '**not established**'}"
    )


def per_method(t: Tables, value: str, stage: str = "trained", decimals: int = 3) -> str:
    """ "aux-loss-free 0.31 ± 0.02, aux-loss-based 0.12 ± 0.01" of one per-seed statistic."""
    p = t.read_back("per_seed")
    return ", ".join(
        f"{METHOD_LABELS[m]} {mean_std_text(p[(p.method == m) & (p.stage == stage)][value], decimals)}" for m in METHODS
    )


def loss_line(t: Tables) -> str:
    """Held-out loss: dense, upcycled before training, trained per method and the dense control."""
    losses = t.read_back("losses")
    mean = losses.groupby(["method", "stage", "seed"])["held-out loss"].mean()  # mean over domains
    dense0 = mean.loc[(DENSE, "init")].mean()
    init = pd.concat([mean.loc[(m, "init")] for m in METHODS])
    trained = {m: mean.loc[(m, "trained")] for m in METHODS}
    dense1 = mean.loc[(DENSE, "trained")].mean()
    return (
        f"**Held-out loss** (nats per token, mean over the three domains): the dense model {dense0:.3f}; upcycled, before "
        f"training {mean_std_text(init, 3)} (the re-drawn neurons' cost); trained "
        + ", ".join(f"{METHOD_LABELS[m]} {mean_std_text(v, 3)}" for m, v in trained.items())
        + f"; aux_free − aux_loss {margin_text(margin_row(t, 'aux_free − aux_loss (trained)', 'held-out loss'))}"
        f"; the dense model's same layers trained on the same batches {dense1:.3f}, so the trained MoE models end "
        f"{abs(gap := pd.concat(trained.values()).mean() - dense1):.3f} nats {'above' if gap > 0 else 'below'} it "
        "(`figures/09_loss_by_domain.png`)"
    )


def supported(t: Tables) -> bool:
    """Source 000's claim holds here: aux_free − aux_loss of specialisation is above 0 by the t-interval and the
    two-stage bootstrap, and so is its margin above the shuffled-domains floor (t-interval)."""
    ok, _ = established(t, "specialisation", "specialisation")
    above = margin_row(t, "aux_free − aux_loss (trained)", "specialisation above the shuffled floor")
    return ok and margin_row(t, "aux_free − aux_loss (trained)", "specialisation")["mean"] > 0 and above["t_low"] > 0


def specialisation_line(t: Tables) -> tuple[bool, str]:
    """Source 000's claim on the trained models, with the shuffled-domains and before-training controls."""
    ok, text = established(t, "specialisation", "specialisation")
    init = per_method(t, "specialisation", "init")
    gains = "; ".join(
        f"{METHOD_LABELS[m]} {margin_text(margin_row(t, f'{m}: trained − init', 'specialisation'))}" for m in METHODS
    )
    shuffled, above = per_method(t, "specialisation, domains shuffled"), "specialisation above the shuffled floor"
    return ok, (
        f"**Domain specialisation** (std over domains of relative load, mean over layers and experts) after training: "
        f"{per_method(t, 'specialisation')}; aux_free − aux_loss {text}. **Controls**: with the held-out documents "
        f"dealt to the domains at random (no domain signal, same document counts) the same models give {shuffled}, and "
        f"the margin above that floor is {margin_text(margin_row(t, 'aux_free − aux_loss (trained)', above))}; "
        f"the upcycled models before any training (a random router reading pretrained states) already give {init}; "
        f"training changed it by {gains}"
    )


def maxvio_line(t: Tables) -> str:
    """Held-out MaxVio of the trained models, per method and paired."""
    _, text = established(t, "heldout_maxvio", "heldout_maxvio")
    return (
        f"**Held-out MaxVio** (domains pooled, mean over layers): {per_method(t, 'heldout_maxvio')}; aux_free − aux_loss "
        f"{text}; before training {per_method(t, 'heldout_maxvio', 'init')}"
    )


def noise_rows(t: Tables, stage: str = "trained") -> pd.DataFrame:
    """The noise summary at HEADLINE_SIGMA (or the nearest σ run)."""
    ns = t.read_back("noise_summary")
    sigma = min(ns.sigma.unique(), key=lambda s: abs(s - HEADLINE_SIGMA))
    return ns[(ns.stage == stage) & (ns.sigma == sigma)]


def routing_cost(t: Tables, value: str) -> str:
    """The per-model paired difference free − pinned of ``value`` at the headline σ, with its t-interval."""
    m = t.read_back("margins")
    row = m[(m.comparison == "routing free − pinned") & (m.value == value)].iloc[0]
    interval = f"[{signed(row['t_low'], 3)}, {signed(row['t_high'], 3)}]"
    return f"{signed(row['mean'], 3)} {interval}, above 0 in {int(row['holds'])} of {int(row['n'])} models"


def noise_line(t: Tables) -> str:
    """Source 003 on the trained routers: Jaccard, changed share, and the KL and flips free, pinned and dense."""
    rows = noise_rows(t)
    sigma = float(rows.sigma.iloc[0])
    moe = rows[rows.method.isin(METHODS)]
    dense = rows[rows.method == DENSE]
    layers = sorted(moe.layer.unique())
    j = " / ".join(f"{moe[moe.layer == layer].jaccard.mean():.2f}" for layer in layers)
    changed = " / ".join(share(moe[moe.layer == layer].changed.mean()) for layer in layers)
    kl, pinned = moe.kl.mean(), moe["kl (routing pinned)"].mean()
    flips, flips_p = moe["top-1 flips"].mean(), moe["top-1 flips (routing pinned)"].mean()
    init = noise_rows(t, "init")
    init = init[init.method.isin(METHODS)]
    return (
        f"**Routing under noise** (σ = {sigma:g} at the input of each MoE block, layers {layers[0]}–{layers[-1]}, both "
        f"methods and all seeds): Jaccard of the top-k sets {j}; tokens that change experts {changed} (the same routers "
        f"before training, random projections of the same states: {init.jaccard.mean():.2f} and "
        f"{share(init.changed.mean())}). **What it costs**: "
        f"the next-token KL is {kl:.3f} with the routing free and {pinned:.3f} with it pinned to the clean choice "
        f"({share(1 - pinned / kl)} of the KL goes with the routing change: free − pinned {routing_cost(t, 'kl')}); "
        f"top-1 predictions flip for {share(flips, 1)} "
        f"free and {share(flips_p, 1)} pinned; the dense control under the same noise: KL {dense.kl.mean():.3f}, flips "
        f"{share(dense['top-1 flips'].mean(), 1)} (`figures/09_noise.png`)"
    )


def profile_line(t: Tables) -> str:
    """Source 002 through this training run: the trained layers' relative update over the checkpoints."""
    trends = t.read_back("profile_trends")
    part = trends[trends.quantity == "relative residual update"]
    pieces, rising = [], {}
    for method, rows in part.groupby("method", sort=False):
        up = rows[rows["seeds rising (rho > 0.5)"] == rows["seeds"]].layer.tolist()
        down = rows[rows["seeds falling (rho < -0.5)"] == rows["seeds"]].layer.tolist()
        rhos = ", ".join(signed(r, 2) for r in rows["rho mean"])
        pieces.append(
            f"{METHOD_LABELS[method]}: rising in every seed in layer(s) {', '.join(map(str, up)) or 'none'}, falling in "
            f"{', '.join(map(str, down)) or 'none'} (mean ρ per layer {rhos})"
        )
        rising[method] = len(up)
    moe = max(rising.get(m, 0) for m in METHODS)
    reading = (
        "the dense control's layers rise as much, so the rise goes with training these layers on the three domains, "
        "not with routing"
        if rising.get(DENSE, 0) >= moe
        else "the MoE models' layers rise more than the dense control's"
    )
    return (
        "**Layer profile through training** (source 002; ‖update‖ / ‖residual‖ of each trained block at "
        f"{int(t.read_back('profile').step.nunique())} checkpoints; the frozen layers below cannot change): "
        + "; ".join(pieces)
        + f"; {reading}"
    )


def checkpoint_line(t: Tables) -> str:
    """The saved checkpoints through notebook 08's routing path."""
    c = t.read_back("checkpoints")
    if c.empty:
        return "**Saved checkpoints**: none in this run"
    same = int(c["identical"].astype(bool).sum())
    return (
        f"**The saved checkpoints** ({', '.join(c.architecture.unique())}, `from_pretrained`) routed by notebook 08's path "
        f"give the same (domain, layer, expert) counts as this notebook's own in {same} of {len(c)} checkpoints "
        f"({int(c['cells equal'].sum())} of {int(c['cells compared'].sum())} cells equal)"
    )


def design_line(t: Tables) -> str:
    """What the budget chose and what it costs the science."""
    s, info = settings_of(t), t.read_back("info")
    params = t.read_back("parameters").set_index("model")
    first = int(info["first MoE layer"])
    return (
        f"**What the budget chose**: MoE only in layers {first}–{first + s.moe_layers - 1} of {first + s.moe_layers - 1} "
        f"({s.n_experts} experts, "
        f"top-{s.top_k}; {params.loc['upcycled MoE', 'total parameters'] / 1e6:.1f} M parameters, "
        f"{params.loc['upcycled MoE', 'active parameters'] / 1e6:.1f} M active, dense "
        f"{params.loc['dense', 'total parameters'] / 1e6:.1f} M); the layers below frozen and run once, so a step costs "
        f"{s.moe_layers} blocks and the LM head; {int(info['train tokens per model']):,} training tokens per model — "
        f"routers and experts move little in so few steps, so this tests balancing on pretrained representations, not "
        f"a converged MoE; {s.reinit_share:g} of each expert's neurons re-drawn (Drop-Upcycling uses 0.5 for long "
        f"training; here 0.5 costs more loss than the run can recover); α = {s.alpha:g}, γ = {s.gamma:g} (notebook 05's "
        f"rates; the papers' 0.0001 and 0.001 move a bias by at most {s.steps * 0.001:.2f} in {s.steps} steps). "
        f"Training the {info['models']} models took {sum(info['train seconds'].values()) / 60:.1f} min "
        f"({info['threads']} threads; measures and checkpoints besides)"
    )


def findings(t: Tables) -> str:
    """The Findings: conclusions first, each with its control, seeds and interval."""
    _, spec = specialisation_line(t)
    verdict = (
        "**Source 000 on pretrained representations: supported** — as in DeepSeek-V3 (its Fig. 9–11) and in notebook "
        "05's byte-level models, the aux-loss-free model's experts are more domain-specific than the aux-loss model's "
        "by both intervals, and above the shuffled-domains floor."
        if supported(t)
        else "**Source 000 on pretrained representations: not supported here** — unlike DeepSeek-V3 (its Fig. 9–11) and "
        "notebook 05's byte-level models, the aux-loss-free model's experts are not more domain-specific than the "
        "aux-loss model's by both intervals and above the shuffled-domains floor."
    )
    return "\n".join(
        f"* {line}."
        for line in (
            verdict.rstrip("."),
            spec,
            maxvio_line(t),
            noise_line(t),
            loss_line(t),
            profile_line(t),
            checkpoint_line(t),
            design_line(t),
        )
    )


def headline(saved: Tables) -> str:
    """One sentence for the README: the specialisation margin and the noise cost."""
    ok = supported(saved)
    row = margin_row(saved, "aux_free − aux_loss (trained)", "specialisation")
    rows = noise_rows(saved)
    moe = rows[rows.method.isin(METHODS)]
    return (
        f"on SmolLM2 upcycled into an MoE (top {settings_of(saved).moe_layers} layers), aux-loss-free balancing "
        f"{'gives' if ok else 'does **not** reliably give'} more domain-specific experts than the "
        f"aux loss: specialisation {margin_text(row)}; at σ = {float(rows.sigma.iloc[0]):g}, "
        f"{share(moe.changed.mean())} of tokens change experts and the next-token KL is {moe.kl.mean():.3f} "
        f"({moe['kl (routing pinned)'].mean():.3f} with the routing pinned)"
    )


def readme_section(saved: Tables) -> str:
    """Notebook 09's README passage: the findings' lines on the saved tables."""
    return (
        "SmolLM2-135M upcycled into a DeepSeek-V3-style MoE in its top layers (`moe_utils.hf.upcycle`, saved as a "
        "`Glm4MoeForCausalLM` checkpoint), trained on notebook 05's three domains with each balancing method:\n\n"
        + findings(saved)
    )
