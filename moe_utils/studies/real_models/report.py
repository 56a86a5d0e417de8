"""Notebook 08's Findings: Markdown written from its tables, beside the claims of the source papers."""

from __future__ import annotations

import pandas as pd

from ...datasets.language_tasks import FAMILIES

PAPER_HEADS = (
    "Cognitive Mirrors (source `001`, arXiv:2512.10978): heads are specific to cognitive functions, masking a "
    "function's top heads hurts it more than random heads, and Math Calculation uses different, deeper heads"
)
PAPER_LAYERS = "source `002`: early layers stay flat across training while later layers rise"


def signed(value: float, digits: int = 3) -> str:
    """+0.123 / −0.045 with a real minus sign."""
    return f"{value:+.{digits}f}".replace("-", "−")


def interval(low: float, high: float, digits: int = 3) -> str:
    """[low, high] with real minus signs."""
    return f"[{low:.{digits}f}, {high:.{digits}f}]".replace("-", "−")


def accuracy_text(accuracy: pd.DataFrame) -> str:
    """Per-family accuracy beside chance, the families at chance named."""
    parts = [
        f"{r.family} {r.accuracy:.2f} (chance {r.chance:.2f}, 95 % {interval(r.low, r.high, 2)})"
        for r in accuracy.itertuples()
    ]
    flat = accuracy.loc[~accuracy["learned"], "family"].tolist()
    at_chance = (
        f"**At chance** (the interval includes chance; left out of the claims): {', '.join(flat)}."
        if flat
        else "No family is at chance."
    )
    return f"**Accuracy on the evaluation half**: {'; '.join(parts)}. {at_chance}"


def ablation_text(ablation: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    """Top heads against layer-matched random heads, per method, over the learned families."""
    learned = set(accuracy.loc[accuracy["learned"], "family"])
    lines = []
    for method, part in ablation[ablation["family"].isin(learned)].groupby("method", sort=False):
        above = part[part["low"] > 0]
        lines.append(
            f"- {method}: masking a family's top {int(part['k'].iloc[0])} heads costs {part['top drop'].mean():.3f} "
            f"accuracy on average, layer-matched random heads {part['random drop (layer-matched)'].mean():.3f} "
            f"({int(part['random draws'].iloc[0])} draws); the margin's 95 % prompt-bootstrap interval lies above 0 "
            f"in {len(above)} of {len(part)} learned families"
            + (f" ({', '.join(above['family'])})" if len(above) else "")
            + "."
        )
    return "**Ablation** (evaluation half):\n" + (
        "\n".join(lines) if lines else "- no family is learned; no ablation claim."
    )


def specificity_text(specificity: pd.DataFrame) -> str:
    """Diagonal against off-diagonal of the cross-family matrix, per method."""
    lines = []
    for r in specificity.to_dict("records"):
        if r["families"] < 2:
            lines.append(f"- {r['method']}: fewer than two learned families; no specificity test.")
            continue
        verdict = (
            "**function-specific** (interval above 0)"
            if r["low"] > 0
            else "**not supported** (interval includes 0)"
            if r["high"] >= 0
            else "reversed (interval below 0)"
        )
        lines.append(
            f"- {r['method']}: own-family drop {r['diagonal']:.3f} vs other families {r['off-diagonal']:.3f}, "
            f"difference {signed(r['difference'])} (95 % {interval(r['low'], r['high'])}) over {r['families']} "
            f"learned families: {verdict}."
        )
    return "**Specificity** (mask family A's heads, measure every family):\n" + "\n".join(lines)


def math_text(math: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    """Is Math Calculation's map less similar to the others' and deeper?"""
    learned = bool(accuracy.set_index("family").loc["Math Calculation", "learned"])
    lines = []
    for r in math.to_dict("records"):
        own, others = r["math depth centroid"], r["others' depth centroid (mean)"]
        cos = r["math vs others (mean cos)"] - r["among the other seven (mean cos)"]
        depth = own - others
        lines.append(
            f"- {r['method']}: Math's similarity to the others minus theirs among themselves {signed(cos)}; "
            f"its depth centroid {own:.1f} vs the others' mean {others:.1f} (layers 1–{int(r['layers'])}) "
            f"({signed(depth, 1)}) — "
            + ("different and deeper" if cos < 0 and depth > 0 else "not different-and-deeper")
        )
    note = "" if learned else " Math Calculation is at chance here, so this is not evidence either way."
    return "**Math vs the rest** (one model, so no seed spread):" + note + "\n" + "\n".join(lines)


def layer_text(layers: pd.DataFrame) -> str:
    """Where the layer profile puts its weight (first vs second half of the layers)."""
    final = layers[layers["checkpoint"] == layers["checkpoint"].iloc[-1]]
    half = len(final) // 2
    share_late = float(final["importance share per head"].iloc[half:].sum() / final["importance share per head"].sum())
    top = final.sort_values("importance share per head", ascending=False)["layer"].head(3).tolist()
    update = final.set_index("layer")["relative residual update"]
    return (
        f"**Layer profile** ({final['checkpoint'].iloc[0]}): the second half of the layers holds "
        f"{100 * share_late:.0f} % of the head-importance share; the three most important layers are "
        f"{', '.join(map(str, top))}. The residual update relative to the residual norm is {update.iloc[0]:.2f} in layer 1 and "
        f"{update.iloc[1:].median():.2f} (median) in the others. A single final checkpoint says nothing about training "
        f"dynamics ({PAPER_LAYERS}); that needs REVISIONS."
    )


def findings(tables) -> str:
    """The Markdown Findings of notebook 08 from its tables."""
    info = tables.info
    head = (
        f"**Model**: {info['model']} — {info['layers']} layers × {info['heads']} heads; weights are 4-bit quantisations "
        f"dequantised to float32. {info['selection prompts']} selection / {info['evaluation prompts']} evaluation prompts "
        f"(8 families); intervals are 95 % bootstraps over prompts (one pretrained model, so no seed spread). "
        f"Task probe accuracy on the evaluation half {info['probe held-out accuracy']:.2f} (chance {1 / len(FAMILIES):.2f})."
    )
    return "\n\n".join(
        [
            f"The paper's claim — {PAPER_HEADS}.",
            head,
            accuracy_text(tables.accuracy),
            ablation_text(tables.ablation, tables.accuracy),
            specificity_text(tables.specificity),
            math_text(tables.math, tables.accuracy),
            layer_text(tables.layers),
        ]
    )
