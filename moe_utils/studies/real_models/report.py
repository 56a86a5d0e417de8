"""Notebook 08's Findings: Markdown written from its tables, beside the claims of the source papers."""

from __future__ import annotations

import pandas as pd

from ...datasets.language_tasks import FAMILIES
from ...io.report import table
from .settings import MASK, PROBE
from .tables import RealModelTables

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


def real_model_rows(saved: dict[str, RealModelTables]) -> dict[str, list[str]]:
    """The notebook-08 table: measure -> one cell per model."""
    rows: dict[str, list[str]] = {}
    for m in ("smollm2", "gemma3"):
        acc, ab = saved[m].read_back("accuracy"), saved[m].read_back("ablation")
        spec, math = (
            saved[m].read_back("specificity").set_index("method"),
            saved[m].read_back("math").set_index("method"),
        )
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


def readme_section(saved: dict[str, RealModelTables]) -> str:
    """Notebook 08's README passage: the real models' table (``saved``: model tag -> its tables) and the paper's
    claims against it."""
    info = {m: saved[m].read_back("info") for m in ("smollm2", "gemma3")}
    rows = real_model_rows(saved)
    body = table(["measure", "SmolLM2-135M-Instruct", "Gemma 3 270M"], [[k, *v] for k, v in rows.items()])
    counts = {}
    for m in info:
        acc, ab = saved[m].read_back("accuracy"), saved[m].read_back("ablation")
        learned = acc[acc["learned"]]
        for method in (MASK, PROBE):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            counts[(m, method)] = f"{int((part['low'] > 0).sum())} of {len(part)}"
    spec = {
        (m, meth): saved[m].read_back("specificity").set_index("method").loc[meth]
        for m in info
        for meth in (MASK, PROBE)
    }
    specific = all(r["low"] > 0 for r in spec.values())
    depth = [saved[m].read_back("math").set_index("method").loc[meth] for m in info for meth in (MASK, PROBE)]
    deltas = [d["math depth centroid"] - d["others' depth centroid (mean)"] for d in depth]
    residual = {m: saved[m].read_back("layers").set_index("layer")["relative residual update"] for m in info}
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


def headline(saved: dict[str, RealModelTables]) -> str:
    """One sentence for the README and the notebook's summary: each model's top heads against layer-matched random
    heads in its learned families, and the own-family specificity."""
    parts = []
    for tables in saved.values():
        name = str(tables.read_back("info")["model"]).split(" (")[0]
        acc, ab = tables.read_back("accuracy"), tables.read_back("ablation")
        learned = acc[acc["learned"]]["family"]
        part = ab[(ab["method"] == MASK) & ab["family"].isin(learned)]
        spec = tables.read_back("specificity").set_index("method").loc[MASK]
        own = f"{signed(spec['difference'], 3)} [{spec['low']:.3f}, {spec['high']:.3f}]".replace("-", "−")
        parts.append(
            f"{name} {int((part['low'] > 0).sum())} of {len(part)} learned families, below 0 in "
            f"{int((part['high'] < 0).sum())} (own − other families' drop {own})"
        )
    models = "two real pretrained models" if len(parts) > 1 else "a real pretrained model"
    return (
        f"on {models}, masking a task family's top heads (head-mask gradient) hurts it more than layer-matched "
        f"random heads, with a 95 % interval above 0, in {'; '.join(parts)}; no shuffled-label or prompt-format "
        f"control has been run on {'them' if len(parts) > 1 else 'it'} yet"
    )
