"""Numbers published in the seed documents, kept verbatim for side-by-side comparison."""
from __future__ import annotations

import pandas as pd

# Seed 004, Figure 2 ("The table of activation rate"): model -> dataset -> (train e1, train e2, test e1, test e2).
SEED_004_ACTIVATION_RATES = {
    "pre-designed gate": {"MNIST": (1.00, 0.00, 1.00, 0.00), "CIFAR": (0.00, 1.00, 0.00, 1.00)},
    "linear gate": {"MNIST": (0.63, 0.37, 0.63, 0.37), "CIFAR": (0.01, 0.99, 0.01, 0.99)},
    "1-hidden-layer gate": {"MNIST": (0.45, 0.55, 0.44, 0.55), "CIFAR": (1.00, 0.00, 1.00, 0.00)},
}


def seed_activation_rates() -> pd.DataFrame:
    """The seed's activation-rate table in long format (model, split, dataset, expert, rate)."""
    rows = []
    for model, by_dataset in SEED_004_ACTIVATION_RATES.items():
        for dataset, (tr1, tr2, te1, te2) in by_dataset.items():
            for split, rates in (("train", (tr1, tr2)), ("test", (te1, te2))):
                rows += [{"model": model, "split": split, "dataset": dataset, "expert": i + 1, "rate": r} for i, r in enumerate(rates)]
    return pd.DataFrame(rows)
