"""Summaries of an Experiment 1 run: final accuracies, source 004's published numbers beside ours, its claims."""

from __future__ import annotations

import pandas as pd

SOURCE_COLUMN = "source_004"  # source 004's published value beside ours

# Source 004, Figure 2 ("The table of activation rate"): model -> dataset -> (train e1, train e2, test e1, test e2).
SOURCE_004_ACTIVATION_RATES = {
    "pre-designed gate": {"MNIST": (1.00, 0.00, 1.00, 0.00), "CIFAR": (0.00, 1.00, 0.00, 1.00)},
    "linear gate": {"MNIST": (0.63, 0.37, 0.63, 0.37), "CIFAR": (0.01, 0.99, 0.01, 0.99)},
    "1-hidden-layer gate": {"MNIST": (0.45, 0.55, 0.44, 0.55), "CIFAR": (1.00, 0.00, 1.00, 0.00)},
}


def source_activation_rates() -> pd.DataFrame:
    """Source 004's activation-rate table in long format (model, split, dataset, expert, rate)."""
    rows = []
    for model, by_dataset in SOURCE_004_ACTIVATION_RATES.items():
        for dataset, (tr1, tr2, te1, te2) in by_dataset.items():
            for split, rates in (("train", (tr1, tr2)), ("test", (te1, te2))):
                rows += [
                    {"model": model, "split": split, "dataset": dataset, "expert": i + 1, "rate": r}
                    for i, r in enumerate(rates)
                ]
    return pd.DataFrame(rows)


def final_accuracy(history: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at the last epoch: one row per model, columns train/test."""
    last = history[history["epoch"] == history["epoch"].max()]
    table = last.pivot(index="model", columns="split", values="accuracy")[["train", "test"]]
    return table.reindex(history["model"].unique()).reset_index()


def rates_beside_source(rates: pd.DataFrame, source_data: bool = True) -> pd.DataFrame:
    """Our activation rates next to source 004's published ones (columns ours, source_004, difference).

    ``source_data=False`` (the images are not source 004's MNIST + CIFAR-10): our rates alone (column ours).
    """
    keys = ["model", "split", "dataset", "expert"]
    if not source_data:
        return rates.rename(columns={"rate": "ours"})
    published = source_activation_rates()
    merged = rates.merge(published, on=keys, how="left", suffixes=("_ours", "_source"))
    merged = merged.rename(columns={"rate_ours": "ours", "rate_source": SOURCE_COLUMN})
    merged["difference"] = merged["ours"] - merged[SOURCE_COLUMN]
    return merged


def claim_checks(final: pd.DataFrame) -> pd.DataFrame:
    """Source 004's accuracy ordering claims, each with the test accuracies involved and whether it holds."""
    test = final.set_index("model")["test"]
    best_learned = max(test["linear gate"], test["1-hidden-layer gate"])
    claims = [
        ("linear gate > pre-designed gate", test["linear gate"], test["pre-designed gate"]),
        ("1-hidden-layer gate > pre-designed gate", test["1-hidden-layer gate"], test["pre-designed gate"]),
        ("pre-designed gate > single expert", test["pre-designed gate"], test["single expert"]),
        ("best learned gate > single expert", best_learned, test["single expert"]),
    ]
    return pd.DataFrame(
        [
            {"claim (test accuracy)": c, "left": a, "right": b, "margin": a - b, "holds": bool(a > b)}
            for c, a, b in claims
        ]
    )
