"""Quick-profile sizes of notebooks 02 and 03: each value caps the full-profile one (see runtime.profile_sizes)."""
from __future__ import annotations

# Notebook 02: 2 epochs on a random 10 % of each split.
FOUR_MODELS_QUICK = {"epochs": 2, "train_share": 0.1, "test_share": 0.1}

# Notebook 03: 5 % of train, 10 % of test, 1 epoch, 2 seeds, 1 seed per hard-split setting.
GATE_ANALYSIS_QUICK = {
    "n_seeds": 2, "hard_split_seeds": 1, "seed_epochs": 1, "study_epochs": 1, "train_share": 0.05, "test_share": 0.1,
}
