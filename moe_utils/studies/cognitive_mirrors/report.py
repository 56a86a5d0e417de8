"""Notebook 10's Findings: Markdown written from its tables, beside what the paper reports."""

from __future__ import annotations

import pandas as pd

from ...datasets.cogqa import FUNCTIONS
from ...io.report import signed, table
from .settings import PROBE, SHUFFLED

PAPER = (
    "Cognitive Mirrors (arXiv:2512.10978v1, Abstract and §4): cognitive heads found by the probe are *sparse*, *vary in "
    "number and distribution across functions*, and *removing them degrades reasoning* more than removing random heads "
    "(its ablation table compares top-k against random-k heads per function on Llama, Qwen, Gemma and Phi models of "
    "1.7B–70B parameters; its per-model numbers are not reproduced here)"
)
ALPHA = 0.05  # family-wise level of the Holm-adjusted tests


def interval(low: float, high: float, digits: int = 3) -> str:
    """[low, high] with real minus signs."""
    return f"[{low:.{digits}f}, {high:.{digits}f}]".replace("-", "−")


def margin_counts(margins: pd.DataFrame, comparison: str, measure: str = "log-prob") -> dict:
    """For one comparison: functions measured, above 0 and below 0 after Holm's adjustment, and their names."""
    part = margins[(margins["comparison"] == comparison) & (margins["measure"] == measure)]
    part = part[part["p"].notna()]
    above = part[(part["p (Holm)"] < ALPHA) & (part["mean"] > 0)]
    below = part[(part["p (Holm)"] < ALPHA) & (part["mean"] < 0)]
    return {
        "n": len(part),
        "above": list(above["function"]),
        "below": list(below["function"]),
        "mean": float(part["mean"].mean()) if len(part) else float("nan"),
    }


def names(functions: list[str]) -> str:
    """ "(A, B)" or "" for none."""
    return f" ({', '.join(functions)})" if functions else ""


def counts_text(c: dict) -> str:
    """ "3 of 8 functions (A, B, C), below 0 in 1 (D)"."""
    return (
        f"{len(c['above'])} of {c['n']} functions{names(c['above'])}, below 0 in {len(c['below'])}{names(c['below'])}"
    )


def accuracy_text(accuracy: pd.DataFrame) -> str:
    """Held-out accuracy of the probe, its shuffled-label control and the words-only control."""
    rows = accuracy.set_index("classifier")
    parts = [f"{name} {r.accuracy:.3f} {interval(r.low, r.high)}" for name, r in rows.iterrows()]
    return (
        f"**Which function a sub-question needs, decoded on {int(accuracy['n'].iloc[0])} held-out test "
        f"sub-questions** (chance {accuracy['chance'].iloc[0]:.3f}; 95 % t-intervals): {'; '.join(parts)}. The words-only "
        "control reads the sub-question and its answer as a bag of words, with no model at all."
    )


def ablation_text(tables) -> str:
    """Per comparison, how many functions' margins are above or below 0 (Holm), in log-prob and exact match."""
    margins, ablation = tables.margins, tables.ablation
    lines = []
    for comparison in dict.fromkeys(margins["comparison"]):
        c = margin_counts(margins, comparison)
        lines.append(
            f"- **{comparison}** (answer log-prob per token): mean margin {signed(c['mean'], 3)} nats; above 0 in "
            f"{counts_text(c)}."
        )
    base = ablation[ablation["condition"] == "top"].set_index("function")["baseline exact match"]
    learned = list(base[base > 0].index)
    lines.append(
        "- **Exact match** of the greedy answer (before masking): "
        + "; ".join(f"{f} {v:.2f}" for f, v in base.items())
        + (
            f". Functions with no exact match before masking ({len(base) - len(learned)}) cannot lose any and are "
            f"left out: top − random in exact match is above 0 in "
            f"{counts_text(margin_counts(margins[margins['function'].isin(learned)], 'top − random', 'exact match'))}."
            if learned
            else ". The model reproduces no reference answer exactly, so exact match cannot fall and is not read."
        )
    )
    return (
        "**Ablation** (each function's own test items; margin = drop with the first set − drop with the control):\n"
        + "\n".join(lines)
    )


def specificity_text(specificity: pd.DataFrame) -> str:
    """Own-function drop against the other functions' drop, per function."""
    above = specificity[(specificity["p (Holm)"] < ALPHA) & (specificity["difference"] > 0)]
    below = specificity[(specificity["p (Holm)"] < ALPHA) & (specificity["difference"] < 0)]
    per = "; ".join(
        f"{r.function} {signed(r.difference, 3)} {interval(r.low, r.high)}" for r in specificity.itertuples()
    )
    return (
        "**Specificity** (a function's top heads masked: its own items' log-prob drop − the other functions' items'; "
        f"95 % bootstrap intervals): {per}. Above 0 after Holm in {len(above)} of {len(specificity)}"
        f"{names(list(above['function']))}; below 0 in {len(below)}{names(list(below['function']))}."
    )


def depth_text(depth: pd.DataFrame, layers: int) -> str:
    """Math's depth against the others', for the probe and its shuffled-label control."""
    rows = depth[depth["function"] == "Math − mean of the others"].set_index("method")
    probe, shuffled = rows.loc[PROBE], rows.loc[SHUFFLED]
    if probe.low > 0 and not shuffled.low > 0:
        verdict = "Math's heads are deeper, and the no-signal control's are not."
    elif probe.low > 0 and probe.low > shuffled.high:
        verdict = (
            "Math's heads are deeper, **but the no-signal control's Math map is deeper too**: the probe's interval lies "
            "above the control's, so part of the depth goes with the labels and part with Math's items themselves."
        )
    else:
        verdict = "**Not supported**: the interval does not lie above 0, or the no-signal control gives as much."
    return (
        f"**Is Math deeper?** Math's depth centroid minus the mean of the other seven ({layers} layers): probe "
        f"{signed(probe.depth, 2)} layers {interval(probe.low, probe.high, 2)}, shuffled-label probe "
        f"{signed(shuffled.depth, 2)} {interval(shuffled.low, shuffled.high, 2)} (95 % bootstrap over items). "
        + verdict
    )


def sparsity_text(elbow: pd.DataFrame) -> str:
    """The elbow head counts per function, probe against the shuffled-label probe."""
    wide = elbow.pivot(index="function", columns="method", values="heads").reindex(FUNCTIONS)
    total = round(elbow["heads"].iloc[0] / elbow["share of heads"].iloc[0])
    return (
        f"**How many heads the elbow keeps** (of {total}): probe "
        + ", ".join(f"{f} {int(v)}" for f, v in wide[PROBE].items())
        + f"; shuffled-label probe {int(wide[SHUFFLED].min())}–{int(wide[SHUFFLED].max())}. A no-signal probe's "
        "importance curve has an elbow too, so the count alone does not show sparsity."
    )


def verdict(tables, named: bool = True) -> str:
    """One sentence: the paper's ablation claim and its two controls on this model (``named``: the model first)."""
    m = tables.margins
    top, shuffled, real = (margin_counts(m, c) for c in ("top − random", "shuffled top − random", "top − shuffled top"))
    return (
        (f"{tables.info['model']}: " if named else "")
        + f"masking a function's top probe heads lowers its reference answers' log-prob more "
        f"than as many random heads outside the top set in {counts_text(top)}; the shuffled-label probe's top heads "
        f"do so in {len(shuffled['above'])} of {shuffled['n']}, and the real top heads beat the shuffled ones in "
        f"{len(real['above'])} of {real['n']} (Holm, α = {ALPHA})"
    )


def power_text(tables) -> str:
    """The smallest standardised effect each function's paired test finds with 80 % power after Holm's adjustment."""
    from statistics import NormalDist

    n = int(tables.margins["n"].min())
    z = NormalDist().inv_cdf(1 - ALPHA / 2 / len(FUNCTIONS)) + NormalDist().inv_cdf(0.8)
    return (
        f"**Power**: with {n} test items per function (the smallest function), a paired margin is found with 80 % "
        f"power at Holm's strictest step only when it is at least {z / n**0.5:.2f} standard deviations of its per-item "
        "differences; smaller effects are not excluded by a count of 0. The intervals are over items for the head "
        f"sets drawn ({int(tables.info['random draws'])} random and {int(tables.info['layer-matched draws'])} "
        "layer-matched draws per function), not over draws of head sets: another draw can move a function's margin "
        "across 0, so a single function's sign is weaker evidence than the counts."
    )


def findings(tables) -> str:
    """The notebook's Findings from its tables."""
    info = tables.info
    return "\n\n".join(
        [
            f"**The paper**: {PAPER}.",
            f"**This run** ({info['model']}, {info['layers']} layers × {info['heads']} heads; "
            f"{info['probe sub-questions (train)']} training and {info['evaluation sub-questions (test)']} test "
            f"sub-questions of CogQA at commit {info['CogQA commit'][:7]}): {verdict(tables, named=False)}.",
            accuracy_text(tables.accuracy),
            sparsity_text(tables.elbow),
            ablation_text(tables),
            specificity_text(tables.specificity),
            depth_text(tables.depth, info["layers"]),
            power_text(tables),
            f"**Comparisons made**: {len(tables.margins)} margins (functions × 4 comparisons × 2 measures, where the "
            f"control exists) and {len(tables.specificity)} specificity differences; p-values are Holm-adjusted within "
            "each comparison and measure over the functions. Where the elbow keeps most of the heads, no random set "
            "outside the top set of the same size exists and that function has no random-head margin.",
        ]
    )


def short_verdict(tables) -> str:
    """The verdict in a clause: the model's short name and the three counts."""
    m = tables.margins
    top, shuffled, real = (margin_counts(m, c) for c in ("top − random", "shuffled top − random", "top − shuffled top"))
    name = str(tables.info["model"]).split(" (")[0]
    return (
        f"{name} {len(top['above'])} of {top['n']} functions (below 0: {len(top['below'])}), the shuffled-label "
        f"probe's top heads {len(shuffled['above'])} of {shuffled['n']}, real over shuffled top heads "
        f"{len(real['above'])} of {real['n']}"
    )


def headline(saved: dict) -> str:
    """One sentence over the models' runs."""
    return (
        "on CogQA with the paper's probe, elbow and ablation, a function's top heads lower its reference answers' "
        f"log-prob more than random heads outside the top set (Holm) in {'; '.join(short_verdict(t) for t in saved.values())}"
    )


def readme_section(saved: dict) -> str:
    """docs/results.md's block: per model, the counts of each comparison and the probe's accuracy."""
    rows = []
    for t in saved.values():
        acc = t.accuracy.set_index("classifier")["accuracy"]
        counts = [margin_counts(t.margins, c) for c in ("top − random", "shuffled top − random", "top − shuffled top")]
        math = t.depth[(t.depth["function"] == "Math − mean of the others") & (t.depth["method"] == PROBE)].iloc[0]
        rows.append(
            [
                t.info["model"],
                f"{acc[PROBE]:.2f} / {acc[SHUFFLED]:.2f} / {acc['words only (no model)']:.2f}",
                *[f"{len(c['above'])} / {len(c['below'])} of {c['n']}" for c in counts],
                f"{signed(math.depth, 2)} {interval(math.low, math.high, 2)}",
            ]
        )
    header = [
        "model",
        "accuracy: probe / shuffled / words only",
        "top − random: above / below 0",
        "shuffled top − random",
        "top − shuffled top",
        "Math depth − others (layers)",
    ]
    return (
        f"{headline(saved)}.\n\n{table(header, rows)}\n\nCounts are of the eight functions whose Holm-adjusted margin "
        f"(answer log-prob per token, each function's own test items) is above or below 0 at α = {ALPHA}."
    )
