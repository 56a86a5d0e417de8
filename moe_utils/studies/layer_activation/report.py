"""Notebook 07's Findings, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

from types import SimpleNamespace

from ...datasets.cognitive_tasks import TASKS
from ...io.report import share, signed
from ...io.tables import Tables
from ...stats import mean_std_text
from .method import ALL_HELD_OUT
from .run import LayerActivationTables
from .settings import LayerActivationSettings

GRADIENT = "raw mean |head-mask gradient|"


SHARES = ("importance share per head", "layer share of |head-mask gradient|")  # within a checkpoint: sum to 1
RELATIVE = ("layer share of |head-mask gradient|", "relative residual update")  # no common factor of the checkpoint
NEAR_MISS = 0.25  # a plateaued seed whose margin is below this share of its threshold is named as a near miss
NAMES = {
    "importance share per head": "(a) share",
    GRADIENT: "(b) raw mean |∂L/∂m_h|",
    "raw mean |residual update|": "(c) raw mean |residual update|",
    "layer share of |head-mask gradient|": "(d) layer share of |∂L/∂m_h|",
    "relative residual update": "(e) ‖update‖ / ‖residual‖",
}


def layer_list(layers: list[int]) -> str:
    """``1–4, 7, 9–12`` from a sorted list of layer numbers."""
    runs, out = [], []
    for layer in layers:
        if runs and layer == runs[-1][-1] + 1:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    for r in runs:
        out.append(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}")
    return ", ".join(out) or "none"


def rising_layers(t: LayerActivationTables, quantity: str) -> tuple[list[int], list[int]]:
    """Layers whose ``quantity`` rises (Spearman ρ with the step > 0.5) in every seed, and those that fall (< −0.5)."""
    part = t.rank_summary[t.rank_summary.quantity == quantity]
    rising = part[part["seeds rising (rho > 0.5)"] == part["seeds"]]["layer"].tolist()
    falling = part[part["seeds falling (rho < -0.5)"] == part["seeds"]]["layer"].tolist()
    return sorted(int(v) for v in rising), sorted(int(v) for v in falling)


def trend_line(t: LayerActivationTables, quantity: str) -> str:
    """Over every checkpoint and seed: the layers where ``quantity`` rises and falls, and the early and late layers'
    mean rank correlation with the step."""
    part, n_layers = t.rank_summary[t.rank_summary.quantity == quantity], t.settings.n_layers
    rising, falling = rising_layers(t, quantity)
    early = part[part.layer <= 4]["rho mean"].mean()
    late = part[part.layer > n_layers - 4]["rho mean"].mean()
    most = "rises in most layers" if len(rising) > n_layers // 2 else "does **not** rise in most layers"
    return (
        f"{NAMES[quantity]} {most}: up in {len(rising)} of {n_layers} layers ({layer_list(rising)}), down in "
        f"{len(falling)} ({layer_list(falling)}); mean ρ layers 1–4 {signed(early, 2)}, layers "
        f"{n_layers - 3}–{n_layers} {signed(late, 2)}"
    )


def source_claim(t: LayerActivationTables) -> str:
    """Source 002's claim as written, and our answer to it: does each layer's share of the importance at a checkpoint
    (the within-checkpoint measures) rise in later layers and stay flat in early ones?"""
    n_layers, n = t.settings.n_layers, int(t.rank_summary["seeds"].max())
    answers = []
    for quantity in (*SHARES, "relative residual update", GRADIENT):
        rising, falling = rising_layers(t, quantity)
        early_flat = not any(layer <= 4 for layer in rising + falling)
        later_rise = all(layer in rising for layer in range(5, n_layers + 1))
        verdict = "matches" if early_flat and later_rise else "does **not** match"
        why = []
        if not early_flat:
            early = [v for v in rising if v <= 4], [v for v in falling if v <= 4]
            why.append(f"of layers 1–4, {layer_list(early[0])} rise and {layer_list(early[1])} fall")
        if not later_rise:
            flat = [v for v in range(5, n_layers + 1) if v not in rising]
            why.append(f"of layers 5–{n_layers}, {layer_list(flat)} do not rise in every seed")
        answers.append(f"{NAMES[quantity]} {verdict} it" + (f" ({'; '.join(why)})" if why else ""))
    rising, falling = rising_layers(t, SHARES[1])
    late = [layer for layer in rising if layer >= 5]
    early_moves = [layer for layer in rising + falling if layer <= 4]
    everywhere = len(late) == n_layers - 4
    verdict = "supported" if everywhere and not early_moves else "supported in part" if late else "**not supported**"
    plain = (
        f"In each layer's share of the head importance at a checkpoint ({NAMES[SHARES[1]]}, which sums to 1 and so "
        f"carries no common factor such as the falling loss), later layers "
        + (
            f"gain relative importance (of layers 5–{n_layers}, {layer_list(late)} rise in every seed)"
            if late
            else "do **not** gain"
        )
        + " while early layers "
        + ("stay flat" if not early_moves else f"do **not** stay flat (layers {layer_list(sorted(early_moves))} move)")
        + f": source 002's picture is {verdict} here."
    )
    return (
        f"**Source `002`'s claim, as written:** layers 1–4 stay flat near 0 throughout training, layers 5–8 rise, and "
        f"layers 9–12 rise to ≈0.008 and level off. **Our answer** (rising = Spearman ρ with the step > 0.5 in all {n} "
        f"seeds, flat = neither rising nor falling): {'; '.join(answers)}. {plain} The raw quantities (b) and (c) can "
        "rise in most layers at once because the loss and the activations change scale over training; a share cannot."
    )


def near_misses(plateaus) -> str:
    """ " — near misses: seed 4 gains 0.021 against 0.028 (…)" for the plateaued seeds whose gain comes within
    NEAR_MISS of the threshold; "" when none does."""
    rows = plateaus.set_index("seed")
    done = rows["plateaued"] == "yes"
    margin, threshold = rows["margin (threshold - gain)"], rows["threshold (2 sampling errors)"]
    near = [seed for seed in rows.index[done] if margin[seed] < NEAR_MISS * threshold[seed]]
    if not near:
        return ""
    named = ", ".join(
        f"seed {seed} gains {rows.loc[seed, 'gain over the last quarter']:.3f} against {threshold[seed]:.3f} (its last "
        f"quarter's checkpoints differ by {signed(rows.loc[seed, 'rise over the last quarter'], 3)})"
        for seed in near
    )
    return f" — near misses, within {NEAR_MISS:.0%} of the threshold: {named}"


def plateau_lines(t: LayerActivationTables) -> str:
    """Accuracy from the first to the last checkpoint, and which seeds have plateaued by one rule."""
    progress, plateaus, n = t.progress, t.plateaus, len(t.plateaus)
    done = plateaus["plateaued"] == "yes"
    first_step, last_step = int(progress.step.min()), int(progress.step.max())
    from_step = int(plateaus["from step"].iloc[0])
    gains = plateaus.set_index("seed")["gain over the last quarter"]
    text = (
        f"**Training to a plateau.** Mean accuracy on all held-out prompts ({len(TASKS)} families, "
        f"{t.info['held-out prompts']:,} prompts) goes from "
        f"{mean_std_text(progress[progress.step == first_step][ALL_HELD_OUT], 2)} at step {first_step:,} to "
        f"{mean_std_text(plateaus['final accuracy'], 2)} at step {last_step:,} ({n} seeds). One rule decides a plateau: "
        f"the least-squares gain over the last quarter of the checkpoints (steps {from_step:,}–{last_step:,}) must not "
        f"exceed twice the sampling error of a difference of two accuracies, 2·√(2p(1−p)/n) ≈ "
        f"{plateaus['threshold (2 sampling errors)'].mean():.3f}. By it {int(done.sum())} of {n} seeds have plateaued"
    )
    text += near_misses(plateaus)
    if done.all():
        return text + f" (gains {mean_std_text(gains, 3)})."
    rising = ", ".join(f"{gains[s]:+.3f} (seed {s})" for s in plateaus.loc[~done, "seed"])
    plateaued = gains[done.to_numpy()]
    spread = mean_std_text(plateaued, 3) if len(plateaued) > 1 else f"{plateaued.iloc[0]:.3f}" if len(plateaued) else ""
    rest = f", against {spread} for the plateaued ones" if done.any() else ""
    return text + f"; still rising at the end: {rising}{rest}. Their trends below include that rise."


def findings(t: LayerActivationTables) -> str:
    """Notebook 07's Findings (Markdown) from its tables."""
    s, n = t.settings, len(t.plateaus)
    shares = t.first.per_layer["importance share per head"]  # the first seed's map, as plotted
    clipped = float((shares > s.share_clip).mean())
    heads = s.n_layers * s.n_heads
    scale = (
        f"**Scale.** The share (a) has mean 1/{heads} ≈ {1 / heads:.4f} at every checkpoint **by construction**, so "
        f"matching the source's 0–0.008 scale says nothing about the model. In the first seed's map its largest value "
        f"is {shares.max():.4f}; {share(clipped)} of the map's cells exceed {s.share_clip:g} and are clipped."
    )
    quantities = (GRADIENT, "raw mean |residual update|", *RELATIVE, "importance share per head")
    trend = f"**Trend over all {t.progress.step.nunique()} checkpoints, {n} seeds.** " + ". ".join(
        trend_line(t, q) for q in quantities
    )
    return "\n\n".join(
        [
            plateau_lines(t) + "\nThe source's heatmap spans 30k–300k steps of an unknown model.",
            scale,
            trend + ".",
            source_claim(t),
        ]
    )


def readme_section(saved: Tables) -> str:
    """Notebook 07: the plateau by one rule, the trends over every checkpoint of the raw and the relative per-layer
    quantities, and source 002's claim as written with our answer (the Findings' own functions, on the saved tables)."""
    s = LayerActivationSettings()
    plateaus = saved.read_back("plateaus")
    n = len(plateaus)
    progress = saved.read_back("progress")
    acc = "held-out accuracy, all prompts (mean of 8)"
    first_step, last_step = int(progress.step.min()), int(progress.step.max())
    done = plateaus["plateaued"] == "yes"
    gains = plateaus.set_index("seed")["gain over the last quarter"]
    still = ", ".join(f"{signed(gains[seed], 3)} (seed {seed})" for seed in plateaus.loc[~done, "seed"])
    layers = saved.read_back("first_layers")
    clipped = layers[layers["importance share per head"] > s.share_clip]
    t = SimpleNamespace(settings=s, plateaus=plateaus, rank_summary=saved.read_back("rank_summary"))
    trends = "; ".join(trend_line(t, q) for q in (GRADIENT, "raw mean |residual update|", *RELATIVE))
    return f"""Source 002's heatmap (layers 1–12 × training steps, values 0–0.008, early layers flat, later layers rising) has no
known source model. We train a {s.n_layers}-layer × {s.n_heads}-head model of the shared block on notebook 06's tasks for
{s.steps:,} steps with {s.n_checkpoints} evenly spaced checkpoints, **{n} seeds**, and compute per layer and checkpoint (a)
its share of total head importance (head-mask gradient) per head, which sums to 1 over the {s.n_layers * s.n_heads} heads
at every checkpoint, (b) the **raw** mean |∂L/∂m_h| of its heads, (c) the raw mean |residual-stream update|, and two
**relative** versions: (d) the layer's share of (b)'s sum at that checkpoint (sums to 1; a common factor such as the
falling loss cancels), (e) ‖update‖ / ‖residual‖ per token.
A trend is read over **every** checkpoint: Spearman's ρ of a layer's value with the step, "rising" when ρ > 0.5 in every
seed.

* **Plateau, by one rule** (the least-squares gain over the last quarter of the checkpoints at most twice the sampling
  error of a difference of two accuracies, ≈ {plateaus["threshold (2 sampling errors)"].mean():.3f}): accuracy on all
  held-out prompts rises from {mean_std_text(progress[progress.step == first_step][acc], 2)} (step {first_step:,}) to
  {mean_std_text(plateaus["final accuracy"], 2)} (step {last_step:,}); {int(done.sum())} of {n} seeds have plateaued
  {near_misses(plateaus)}
  {f"(gains {mean_std_text(gains[done.to_numpy()], 3)})" if done.any() else ""}{f"; still rising: {still}" if still else ""}
  (`figures/07_plateau.csv`).
* **The scale matches by construction**: a share per head averages 1/{s.n_layers * s.n_heads} ≈
  {1 / (s.n_layers * s.n_heads):.3f}, so landing on source 002's 0–0.008 says nothing. The share panel is clipped at
  {s.share_clip:g} with the clipped cells marked ({len(clipped)} cells of the plotted seed, in layer(s)
  {", ".join(map(str, sorted(clipped.layer.unique())))}); the other panels use log scales.
* **Trends over all checkpoints** (`figures/07_rank_trends.png`): {trends}.
* {source_claim(t)} (`figures/07_layer_activation_seeds.png`). We report the mismatch where there is one rather than tune
  the set-up until it appears."""


def headline(saved: Tables) -> str:
    """One sentence for the README: source 002's picture against each layer's share of the importance over training."""
    s = LayerActivationSettings()
    summary = saved.read_back("rank_summary")
    t = SimpleNamespace(settings=s, rank_summary=summary)
    quantity = SHARES[1]
    rising, falling = rising_layers(t, quantity)
    part = summary[summary.quantity == quantity]
    early, late = part[part.layer <= 4]["rho mean"].mean(), part[part.layer > s.n_layers - 4]["rho mean"].mean()
    matches = not any(v <= 4 for v in rising) and all(v in rising for v in range(5, s.n_layers + 1))
    n = int(part["seeds"].max())
    return (
        f"source 002's picture (early layers flat, later layers rising) {'is' if matches else 'is **not**'} what a "
        f"{s.n_layers}-layer model trained here shows in each layer's share of the head-mask gradient (which sums to "
        f"1 at every checkpoint): {len(rising)} of {s.n_layers} layers rise and {len(falling)} fall in all {n} seeds; "
        f"mean Spearman ρ with the step {signed(early, 2)} in layers 1–4, {signed(late, 2)} in layers "
        f"{s.n_layers - 3}–{s.n_layers}"
    )
