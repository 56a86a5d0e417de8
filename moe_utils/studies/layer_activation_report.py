"""Notebook 07's Findings, written from its tables: every number in the prose comes from here."""

from __future__ import annotations

import pandas as pd

from ..datasets.cognitive_tasks import TASKS
from ..io.report import share
from ..stats import mean_std_text
from .layer_activation import ALL_HELD_OUT
from .layer_activation_study import LayerActivationTables

GRADIENT = "raw mean |head-mask gradient|"


def trend_line(t: LayerActivationTables, quantity: str, name: str) -> str:
    """How many layers a quantity rises in, and the early and late layers' first → last values, over seeds."""
    tr, n_layers, n = t.trends[t.trends.quantity == quantity], t.settings.n_layers, len(t.plateaus)
    return (
        f"{name}: rises from step {int(t.progress.step.min()):,} to {int(t.progress.step.max()):,} in "
        f"{mean_std_text(tr['layers rising'], 1)} of {n_layers} layers (most layers, ≥ {n_layers // 2 + 1}, in "
        f"{int((tr['layers rising'] > n_layers // 2).sum())} of {n} seeds); layers 1–4 "
        f"{mean_std_text(tr['layers 1-4 first'], 4)} → "
        f"{mean_std_text(tr['layers 1-4 last'], 4)}, layers {n_layers - 3}–{n_layers} "
        f"{mean_std_text(tr['late layers first'], 4)} → "
        f"{mean_std_text(tr['late layers last'], 4)}"
    )


def source_pattern(t: LayerActivationTables) -> str:
    """Whether the raw head-mask gradient shows the source's pattern: late layers rise, early layers change less."""
    tr = t.trends[t.trends.quantity == GRADIENT]
    late = tr["late layers last"] - tr["late layers first"]
    early = tr["layers 1-4 last"] - tr["layers 1-4 first"]
    rise = "rise" if (late > 0).all() else "do not rise"
    flat = (
        "change by less than the late layers"
        if (early.abs() < late.abs()).all()
        else "do not stay flatter than the late layers"
    )
    return (
        f"The source's picture needs early layers flat and later layers rising: under the raw head-mask gradient, layers "
        f"{t.settings.n_layers - 3}–{t.settings.n_layers} {rise} in every seed and layers 1–4 {flat} in every seed."
    )


def plateau_lines(t: LayerActivationTables) -> str:
    """Accuracy from the first to the last checkpoint, which seeds plateau, and what the others still gain."""
    progress, plateaus, n = t.progress, t.plateaus, len(t.plateaus)
    reached = plateaus["plateau step"].notna()
    first_step, last_step = int(progress.step.min()), int(progress.step.max())
    steps = sorted(progress.step.unique())
    late_from = steps[-5] if len(steps) >= 5 else first_step  # 4 checkpoints before the last
    wide = progress.pivot(index="step", columns="seed", values=ALL_HELD_OUT)
    gain = (wide.loc[last_step] - wide.loc[late_from]).to_dict()
    rising = {s: gain[s] for s in plateaus.loc[~reached, "seed"]}
    at = ", ".join(f"{int(s):,}" for s in plateaus.loc[reached, "plateau step"]) or "—"
    text = (
        f"**Training to a plateau.** Mean accuracy on all held-out prompts ({len(TASKS)} families, "
        f"{t.info['held-out prompts']:,} prompts) goes from "
        f"{mean_std_text(progress[progress.step == first_step][ALL_HELD_OUT], 2)} "
        f"at step {first_step:,} to {mean_std_text(plateaus['final accuracy'], 2)} at step {last_step:,} ({n} "
        f"seeds). It plateaus "
        f"(3 checkpoints without +0.01) in {int(reached.sum())} of {n} seeds, at step {at}"
    )
    if reached.all():
        return text + ". Every seed's accuracy has stopped improving by then."
    others = pd.Series([g for s, g in gain.items() if s not in rising])
    return (
        text
        + f"; still rising at the end in {int((~reached).sum())}. Over the last {last_step - late_from:,} steps the "
        "still-rising seed(s) gain "
        + ", ".join(f"{g:+.3f} (seed {s})" for s, g in rising.items())
        + f", against {mean_std_text(others, 3)} for the plateaued ones."
    )


def findings(t: LayerActivationTables) -> str:
    """Notebook 07's Findings (Markdown) from its tables."""
    s, n = t.settings, len(t.plateaus)
    shares = t.per_layer["importance share per head"]
    clipped = float((shares > s.share_clip).mean())
    heads = s.n_layers * s.n_heads
    scale = (
        f"**Scale.** The share (a) has mean 1/{heads} ≈ {1 / heads:.4f} at every checkpoint **by construction**, so "
        f"matching the source's 0–0.008 scale says nothing about the model. Its largest value is {shares.max():.4f}; "
        f"{share(clipped)} of the cells exceed {s.share_clip:g} and are clipped."
    )
    trend = (
        f"**Trend, over {n} seeds (mean ± std).** {trend_line(t, GRADIENT, '(b) Raw mean |∂L/∂m_h|')}. "
        f"{trend_line(t, 'raw mean |residual update|', '(c) Raw mean |residual update|')}. "
        f"{trend_line(t, 'importance share per head', '(a) Share')}. {source_pattern(t)}"
    )
    return "\n\n".join(
        [plateau_lines(t) + "\nThe source's heatmap spans 30k–300k steps of an unknown model.", scale, trend]
    )
