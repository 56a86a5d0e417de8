"""Notebook 02's Findings, summary line and README passage, written from its tables: every number comes from here."""

from __future__ import annotations

from ...exp1.figure_style import MODELS
from ...exp1.summary import SOURCE_COLUMN
from ...io.report import holds, signed, table
from .settings import FourModelsSettings
from .tables import FourModelsTables


def findings(t: FourModelsTables) -> str:
    """Notebook 02: final accuracy, source 004's claims, and the activation rates beside the source's."""
    s, data = t.settings, t.data
    test, train = t.final.set_index("model")["test"], t.final.set_index("model")["train"]
    claims = t.claims.set_index("claim (test accuracy)")
    verdicts = "; ".join(
        f"*{c}* {holds(r['holds'])} ({signed(100 * r['margin'], 2)} points)" for c, r in claims.iterrows()
    )
    claims_are = "Source 004's claims" if data.is_source_data else "The four models' orderings"
    text = f"""**Accuracy** ({s.size("epochs")} epochs, {data.source} data, seed {s.seed}). Final test accuracy:
{", ".join(f"{n} {test[n]:.3f}" for n in MODELS)} (train: {", ".join(f"{train[n]:.3f}" for n in MODELS)}). {claims_are},
on test accuracy: {verdicts}. A single linear softmax over {data.n_classes} classes already separates the two datasets' classes
through its logits, so handing each dataset its own linear expert adds little; learned gates can gain by splitting *within* the
datasets. One seed: notebook 03 tests these orderings over 5 seeds."""
    if not data.is_source_data:
        return text + f"\n\n**Activation rates**: see the table above ({data.describe()})."
    rate = t.rates.set_index(["model", "split", "dataset", "expert"])["rate"]
    theirs_rate = t.compared.set_index(["model", "split", "dataset", "expert"])[SOURCE_COLUMN]
    pair = lambda r, model, d: f"{r[model, 'test', d, 1]:.2f} / {r[model, 'test', d, 2]:.2f}"  # noqa: E731
    both = lambda model, d: f"{pair(rate, model, d)} ({pair(theirs_rate, model, d)})"  # noqa: E731
    first, second = data.dataset_names
    gap = (rate.xs("train", level="split") - rate.xs("test", level="split")).abs().max()
    return (
        text
        + f"""

**Activation rates** (test; expert 1 / expert 2, ours with source 004's in brackets). Pre-designed gate: {first}
{pair(rate, "pre-designed gate", first)}, {second} {pair(rate, "pre-designed gate", second)} (exact, as it must be). Linear
gate: {first} {both("linear gate", first)}, {second} {both("linear gate", second)}. 1-hidden-layer gate: {first}
{both("1-hidden-layer gate", first)}, {second} {both("1-hidden-layer gate", second)}. Expert numbers are arbitrary (the
experts are interchangeable): compare the pattern. Train and test rates differ by at most {gap:.3f}."""
    )


def headline(t: FourModelsTables) -> str:
    """One sentence for the README from notebook 02's final accuracy (model, train, test) and activation rates
    (model, split, dataset, …) tables."""
    final, rates = t.final, t.compared
    test = final.set_index("model")["test"]
    datasets = " + ".join(dict.fromkeys(rates["dataset"]))
    accuracies = ", ".join(f"{test[m]:.3f} ({m})" for m in MODELS)
    return f"Experiment 1 re-run on {datasets}, one seed: test accuracy {accuracies}"


GATES = ("linear gate", "1-hidden-layer gate")


def readme_section(t: FourModelsTables) -> str:
    """The README's passage on notebook 02: final accuracy and activation rates beside source 004's."""
    s = FourModelsSettings()
    final = t.final.set_index("model")
    rates = t.compared
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
