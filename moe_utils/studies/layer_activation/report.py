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


SCALE_FREE = ("mean |head-mask gradient| / loss", "relative residual update")
NAMES = {
    "importance share per head": "(a) share",
    GRADIENT: "(b) raw mean |∂L/∂m_h|",
    "raw mean |residual update|": "(c) raw mean |residual update|",
    "mean |head-mask gradient| / loss": "(d) mean |∂L/∂m_h| / L",
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
    """Source 002's claim as written, and our answer to it under the raw and the scale-free quantities."""
    n_layers, n = t.settings.n_layers, len(t.plateaus)
    answers = []
    for quantity in (GRADIENT, *SCALE_FREE):
        rising, _ = rising_layers(t, quantity)
        early_flat = not any(layer <= 4 for layer in rising)
        later_rise = all(layer in rising for layer in range(5, n_layers + 1))
        verdict = "matches" if early_flat and later_rise else "does **not** match"
        why = []
        if not early_flat:
            why.append(f"of layers 1–4, {layer_list([v for v in rising if v <= 4])} rise")
        if not later_rise:
            flat = [v for v in range(5, n_layers + 1) if v not in rising]
            why.append(f"of layers 5–{n_layers}, {layer_list(flat)} do not rise in every seed")
        answers.append(f"{NAMES[quantity]} {verdict} it" + (f" ({'; '.join(why)})" if why else ""))
    survives = [NAMES[q] for q in SCALE_FREE if len(rising_layers(t, q)[0]) > n_layers // 2]
    return (
        f"**Source `002`'s claim, as written:** layers 1–4 stay flat near 0 throughout training, layers 5–8 rise, and "
        f"layers 9–12 rise to ≈0.008 and level off. **Our answer** (rising = Spearman ρ with the step > 0.5 in all {n} "
        f'seeds): {"; ".join(answers)}. "Rising in most layers", which the raw quantities can show, '
        + (
            f"survives the scale-free versions in {', '.join(survives)}."
            if survives
            else "does **not** survive either scale-free version, so it may follow the scale of the loss and the activations "
            "rather than anything the layers do."
        )
    )


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
    if done.all():
        return text + f" (gains {mean_std_text(gains, 3)})."
    rising = ", ".join(f"{gains[s]:+.3f} (seed {s})" for s in plateaus.loc[~done, "seed"])
    rest = f", against {mean_std_text(gains[done.to_numpy()], 3)} for the plateaued ones" if done.any() else ""
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
    quantities = (GRADIENT, "raw mean |residual update|", *SCALE_FREE, "importance share per head")
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
    """Notebook 07: the plateau by one rule, the trends over every checkpoint of the raw and the scale-free per-layer
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


def headline(saved: Tables) -> str:
    """One sentence for the README: source 002's picture against each layer's share of the importance over training."""
    s = LayerActivationSettings()
    summary = saved.read_back("rank_summary")
    t = SimpleNamespace(settings=s, rank_summary=summary)
    quantity = "importance share per head"
    rising, falling = rising_layers(t, quantity)
    part = summary[summary.quantity == quantity]
    early, late = part[part.layer <= 4]["rho mean"].mean(), part[part.layer > s.n_layers - 4]["rho mean"].mean()
    matches = not any(v <= 4 for v in rising) and all(v in rising for v in range(5, s.n_layers + 1))
    n = int(part["seeds"].max())
    return (
        f"source 002's picture (early layers flat, later layers rising) {'is' if matches else 'is **not**'} what a "
        f"{s.n_layers}-layer model trained here shows in each layer's share of the head importance (which sums to 1 "
        f"at every checkpoint): {len(rising)} of {s.n_layers} layers rise and {len(falling)} fall in all {n} seeds; "
        f"mean Spearman ρ with the step {signed(early, 2)} in layers 1–4, {signed(late, 2)} in layers "
        f"{s.n_layers - 3}–{s.n_layers}"
    )
