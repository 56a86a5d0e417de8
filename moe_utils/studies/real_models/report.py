"""Notebook 08's Findings: Markdown written from its tables, beside the claims of the source papers."""

from __future__ import annotations

import pandas as pd

from ...datasets.language_tasks import FAMILIES
from ...io.report import table
from .settings import MASK, PROBE, SHUFFLED, SHUFFLED_TEMPLATE, TEMPLATE
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


def holm_counts(part: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Families whose margin is above / below 0 with Holm's adjusted p < 0.05 (learned families only)."""
    sig = part[part["p (Holm, learned)"] < 0.05]
    return list(sig[sig["margin"] > 0]["family"]), list(sig[sig["margin"] < 0]["family"])


def ablation_text(ablation: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    """Top heads against layer-matched random heads outside the top set, per method, over the learned families."""
    learned = set(accuracy.loc[accuracy["learned"], "family"])
    lines = []
    for method, part in ablation[ablation["family"].isin(learned)].groupby("method", sort=False):
        above, below = holm_counts(part)
        per = "; ".join(f"{r.family} {signed(r.margin)} {interval(r.low, r.high)}" for r in part.itertuples())
        lines.append(
            f"- {method}: masking a family's top {int(part['k'].iloc[0])} heads costs {part['top drop'].mean():.3f} "
            f"accuracy on average, layer-matched random heads outside the top set "
            f"{part['random drop (layer-matched)'].mean():.3f} ({int(part['random draws'].iloc[0])} draws). Margins per "
            f"learned family (95 % bootstrap): {per}. Above 0 after Holm's adjustment over the {len(part)} learned "
            f"families in {len(above)}"
            + (f" ({', '.join(above)})" if above else "")
            + f", below 0 in {len(below)}"
            + (f" ({', '.join(below)})" if below else "")
            + "."
        )
    return (
        "**Ablation** (evaluation half; unlearned families left out):\n"
        + ("\n".join(lines) if lines else "- no family is learned; no ablation claim.")
        + "\n\nWhere the shuffled-label probe's top heads pass as often as the real probe's, beating random heads "
        "does not show a function: a map with no family signal does it too."
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


OWN = "own − others' drop"  # family_specificity's column


def family_specificity_text(family: pd.DataFrame | None) -> str:
    """Per learned family: its own drop minus the other learned families' mean drop, per method."""
    if family is None or family.empty:
        return "**Specificity per family**: fewer than two learned families."
    lines = []
    for method, part in family.groupby("method", sort=False):
        sig = part[part["p (Holm)"] < 0.05]
        above, below = (
            list(sig[sig["own − others' drop"] > 0]["family"]),
            list(sig[sig["own − others' drop"] < 0]["family"]),
        )
        per = "; ".join(
            f"{r['family']} {signed(r[OWN])} {interval(r['low'], r['high'])}" for r in part.to_dict("records")
        )
        lines.append(
            f"- {method}: {per}. Above 0 after Holm in {len(above)} of {len(part)}"
            + (f" ({', '.join(above)})" if above else "")
            + f", below 0 in {len(below)}"
            + (f" ({', '.join(below)})" if below else "")
            + "."
        )
    return "**Specificity per family** (own drop − other learned families' mean drop):\n" + "\n".join(lines)


def math_text(math: pd.DataFrame, accuracy: pd.DataFrame) -> str:
    """Is Math Calculation's map less similar to the others' and deeper, with an interval and the control's value?"""
    learned = bool(accuracy.set_index("family").loc["Math Calculation", "learned"])
    lines = []
    for r in math.to_dict("records"):
        cos = r["math vs others (mean cos)"] - r["among the other seven (mean cos)"]
        depth = r["math − others depth"]
        deeper = r["depth low"] > 0
        lines.append(
            f"- {r['method']}: Math's similarity to the others minus theirs among themselves {signed(cos)}; its depth "
            f"centroid minus the mean of the {int(r['others'])} learned others {signed(depth, 2)} layers "
            f"{interval(r['depth low'], r['depth high'], 2)} (95 % bootstrap over prompts; layers 1–{int(r['layers'])}) "
            f"— " + ("deeper" if deeper else "not deeper")
        )
    note = "" if learned else " Math Calculation is at chance here, so this is not evidence either way."
    return (
        "**Math vs the rest** (the shuffled-label probe's row is what a map without family signal gives):"
        + note
        + "\n"
        + "\n".join(lines)
    )


def template_counts(templates: pd.DataFrame, probe: str) -> tuple[list[str], list[str]]:
    """Families whose within − across template overlap is above / below 0 with Holm's adjusted p < 0.05."""
    sig = templates[(templates["probe"] == probe) & (templates["p (Holm)"] < 0.05)]
    return list(sig[sig["within − across"] > 0]["family"]), list(sig[sig["within − across"] < 0]["family"])


def template_text(templates: pd.DataFrame | None, info: dict) -> str:
    """The format control: do a family's templates share top heads beyond what templates of different families share?"""
    if templates is None or not len(templates) or "template probe held-out accuracy" not in info:
        return ""
    part = templates[templates["probe"] == TEMPLATE]
    per = "; ".join(
        f"{r['family']} ({r['templates']} templates) {signed(r['within − across'])} {interval(r['low'], r['high'])}"
        for r in part.to_dict("records")
    )
    above, below = template_counts(templates, TEMPLATE)
    c_above, c_below = template_counts(templates, SHUFFLED_TEMPLATE)
    return (
        f"**Format control** (a probe of each prompt's template, {info['templates']} templates, instead of its family; "
        f"held-out accuracy {info['template probe held-out accuracy']:.2f}, on shuffled template labels "
        f"{info['shuffled-template probe held-out accuracy']:.2f}): for the families written from several templates, "
        f"the Jaccard overlap of the templates' top heads with each other minus with the other families' templates "
        f"(95 % bootstrap over prompts): {per}. Above 0 after Holm in {len(above)} of {len(part)}"
        f"{' (' + ', '.join(above) + ')' if above else ''}, below 0 in {len(below)}; with shuffled template labels "
        f"above 0 in {len(c_above)}, below 0 in {len(c_below)}. Above 0 means a family's templates share heads "
        "beyond their wording — a function (or its shared vocabulary) rather than a format; at 0 the family's map "
        "cannot be told apart from the maps of its templates. Families written from one template cannot be tested "
        "this way."
    )


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
        f"Task probe accuracy on the evaluation half {info['probe held-out accuracy']:.2f}, shuffled-label probe "
        f"{info['shuffled-label probe held-out accuracy']:.2f} (chance {1 / len(FAMILIES):.2f}). Each family has its "
        "own prompt templates, so a probe that separates the families may read their format rather than their "
        "function; notebook 10 repeats the paper's pipeline on CogQA, where all items share one format."
    )
    return "\n\n".join(
        [
            f"The paper's claim — {PAPER_HEADS}.",
            head,
            accuracy_text(tables.accuracy),
            ablation_text(tables.ablation, tables.accuracy),
            specificity_text(tables.specificity),
            family_specificity_text(getattr(tables, "family_specificity", None)),
            template_text(getattr(tables, "templates", None), info),
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
        for method, short in ((MASK, "head-mask"), (PROBE, "probe"), (SHUFFLED, "shuffled probe")):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            above, below = holm_counts(part)
            rows.setdefault(f"{short}: top − layer-matched random drop, families above / below 0 (Holm)", []).append(
                f"{len(above)} / {len(below)} of {len(part)}"
            )
            sp, q = spec.loc[method], math.loc[method]
            rows.setdefault(f"{short}: own-family − other-family drop [95 %]", []).append(
                f"{signed(sp['difference'], 3)} [{sp['low']:.3f}, {sp['high']:.3f}]".replace("-", "−")
            )
            rows.setdefault(f"{short}: Math cos to others − others' among themselves", []).append(
                signed(q["math vs others (mean cos)"] - q["among the other seven (mean cos)"], 3)
            )
            rows.setdefault(f"{short}: Math depth centroid − learned others' mean (layers) [95 %]", []).append(
                f"{signed(q['math − others depth'], 1)} {interval(q['depth low'], q['depth high'], 1)}"
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
        for method in (MASK, PROBE, SHUFFLED):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            above, below = holm_counts(part)
            counts[(m, method)] = f"{len(above)} of {len(part)} (below 0 in {len(below)})"
    family = {m: saved[m].read_back("family_specificity") for m in info}
    own = {
        (m, meth): int(((f["method"] == meth) & (f["p (Holm)"] < 0.05) & (f["own − others' drop"] > 0)).sum())
        for m, f in family.items()
        for meth in (MASK, PROBE, SHUFFLED)
    }
    n_learned = {m: int((family[m]["method"] == MASK).sum()) for m in info}
    math = {m: saved[m].read_back("math").set_index("method") for m in info}
    deeper = {(m, meth): bool(math[m].loc[meth, "depth low"] > 0) for m in info for meth in (MASK, PROBE, SHUFFLED)}
    residual = {m: saved[m].read_back("layers").set_index("layer")["relative residual update"] for m in info}
    top = {m: int(r.idxmax()) for m, r in residual.items()}
    fmt = {}
    for m in info:
        t = saved[m].read_back("templates")
        above, below = template_counts(t, TEMPLATE)
        c_above, _ = template_counts(t, SHUFFLED_TEMPLATE)
        n = int((t["probe"] == TEMPLATE).sum())
        fmt[m] = f"{len(above)} of {n} (below 0 in {len(below)}; shuffled template labels {len(c_above)})"
    a, b = info["smollm2"], info["gemma3"]
    return f"""Maps on the selection half ({a["selection prompts"]} prompts), ablations on the evaluation half
({a["evaluation prompts"]} prompts); top heads = 5 % of all heads ({a["k"]} of {a["layers"] * a["heads"]} in SmolLM2,
{b["k"]} of {b["layers"] * b["heads"]} in Gemma); the control masks as many random heads **in the same layers, outside
the top set**; a probe trained on **shuffled labels** goes through the same pipeline as a no-signal control; intervals
are 95 % bootstraps over prompts (one pretrained model each) and counts use Holm-adjusted p < 0.05 over the learned
families. Families whose accuracy interval includes chance are left out. From `figures/08_*_accuracy.csv`,
`08_*_ablation.csv`, `08_*_family_specificity.csv` and `08_*_math_vs_others.csv`:

{body}

**Against the paper's claims** (source `001`), each beside its no-signal control:
- *Masking a function's top heads hurts more than random heads*: above 0 for the head-mask maps in
  {counts[("smollm2", MASK)]} learned families of SmolLM2 and {counts[("gemma3", MASK)]} of Gemma; for the probe maps
  in {counts[("smollm2", PROBE)]} and {counts[("gemma3", PROBE)]}; **the shuffled-label probe's maps** in
  {counts[("smollm2", SHUFFLED)]} and {counts[("gemma3", SHUFFLED)]}.
- *Function-specific heads* (a family's own drop above the other learned families', per family, Holm): head mask
  {own[("smollm2", MASK)]} of {n_learned["smollm2"]} (SmolLM2) and {own[("gemma3", MASK)]} of {n_learned["gemma3"]}
  (Gemma); probe {own[("smollm2", PROBE)]} and {own[("gemma3", PROBE)]}; shuffled-label probe
  {own[("smollm2", SHUFFLED)]} and {own[("gemma3", SHUFFLED)]}.
- *Math Calculation uses deeper heads* (interval of Math's depth minus the learned others' above 0): head mask
  {deeper[("smollm2", MASK)]} / {deeper[("gemma3", MASK)]}, probe {deeper[("smollm2", PROBE)]} /
  {deeper[("gemma3", PROBE)]}, shuffled-label probe {deeper[("smollm2", SHUFFLED)]} / {deeper[("gemma3", SHUFFLED)]}
  (SmolLM2 / Gemma).
- **Format and function coincide** in these families (each has its own templates), so none of these rows separates a
  cognitive function from a prompt format. The format control (a probe of each prompt's template,
  `08_*_template_overlap.csv`): of the families written from several templates, those whose templates share more top
  heads with each other than with other families' templates (Holm): {fmt["smollm2"]} for SmolLM2, {fmt["gemma3"]} for
  Gemma. Notebook 10 runs the paper's pipeline on CogQA, one shared format.
- Layer profile (source `002`): one final checkpoint cannot show training dynamics. The relative residual update is
  largest in layer {top["smollm2"]} for SmolLM2 ({residual["smollm2"].max():.1f}) and layer {top["gemma3"]} for Gemma
  ({residual["gemma3"].max():.1f})."""


def headline(saved: dict[str, RealModelTables]) -> str:
    """One sentence for the README and the notebook's summary: each model's top heads against layer-matched random
    heads outside the top set in its learned families (Holm), beside the shuffled-label probe's and the format
    control's count."""
    parts, formats = [], []
    for tables in saved.values():
        name = str(tables.read_back("info")["model"]).split(" (")[0]
        templates = tables.read_back("templates")
        formats.append(
            f"{len(template_counts(templates, TEMPLATE)[0])} of {int((templates['probe'] == TEMPLATE).sum())} "
            f"({name.split('-')[0].split(' ')[0]})"
        )
        acc, ab = tables.read_back("accuracy"), tables.read_back("ablation")
        learned = acc[acc["learned"]]["family"]
        counts = {}
        for method in (MASK, PROBE, SHUFFLED):
            above, below = holm_counts(ab[(ab["method"] == method) & ab["family"].isin(learned)])
            counts[method] = (len(above), len(below))
        parts.append(
            f"{name}: head mask {counts[MASK][0]}, probe {counts[PROBE][0]}, shuffled-label probe "
            f"{counts[SHUFFLED][0]} of {len(learned)} learned families above 0 (below 0: {counts[MASK][1]}, "
            f"{counts[PROBE][1]}, {counts[SHUFFLED][1]})"
        )
    models = "two real pretrained models" if len(parts) > 1 else "a real pretrained model"
    return (
        f"on {models}, masking a task family's top heads hurts it more than as many random heads in the same layers "
        f"outside the top set (Holm) in {'; '.join(parts)}; each family has its own prompt templates, and a probe of "
        f"the template finds a family's templates sharing top heads beyond their wording (a function, or shared words) "
        f"in {' and '.join(formats)}"
    )
