"""Notebook 07's study: checkpoints, per-layer measures, unnormalised trends, settings and Findings."""

from __future__ import annotations

import pandas as pd
import pytest

from moe_utils.studies.layer_activation_seeds import layer_trends


def test_layer_trends_count_rising_layers_without_rescaling():
    rows = [
        {"seed": 0, "step": step, "layer": layer, "q": (1 + layer) * (2.0 if step == 20 else 1.0)}
        for step in (10, 20)
        for layer in range(1, 13)
    ]
    t = layer_trends(pd.DataFrame(rows), "q").iloc[0]
    assert t["layers rising"] == 12  # every layer doubles: a share could not show this
    assert t["late layers last"] == pytest.approx(2 * t["late layers first"])


def tiny_tables(final_gain: float = 0.0, late_rises: bool = True):
    """Hand-made notebook-07 tables: 2 seeds, 5 checkpoints, 12 layers; seed 1 plateaus only if ``final_gain`` is 0."""
    from types import SimpleNamespace

    from moe_utils.studies.layer_activation import ALL_HELD_OUT
    from moe_utils.studies.layer_activation_settings import LayerActivationSettings

    steps = [250, 500, 750, 1000, 1250]
    progress = pd.DataFrame(
        [
            {"seed": s, "step": st, ALL_HELD_OUT: 0.5 + 0.05 * i + (final_gain * (i == 4) if s == 1 else 0)}
            for s in (0, 1)
            for i, st in enumerate(steps)
        ]
    )
    plateaus = pd.DataFrame(
        {
            "seed": [0, 1],
            "plateau step": [750.0, 750.0 if final_gain == 0 else float("nan")],
            "final accuracy": [0.70, 0.70 + final_gain],
        }
    )
    rows = []
    for seed in (0, 1):
        for i, st in enumerate(steps):
            for layer in range(1, 13):
                late = layer >= 9
                gradient = 1.0 + (0.5 * i if late and late_rises else 0.0)
                rows.append(
                    {
                        "seed": seed,
                        "step": st,
                        "layer": layer,
                        "importance share per head": 1 / 144,
                        "raw mean |head-mask gradient|": gradient,
                        "raw mean |residual update|": 1.0 + 0.1 * i,
                    }
                )
    per_layer = pd.DataFrame(rows)
    quantities = ["importance share per head", "raw mean |head-mask gradient|", "raw mean |residual update|"]
    trends = pd.concat([layer_trends(per_layer, q) for q in quantities], ignore_index=True)
    return SimpleNamespace(
        settings=LayerActivationSettings(),
        progress=progress,
        plateaus=plateaus,
        per_layer=per_layer,
        trends=trends,
        info={"held-out prompts": 2400},
    )


def test_findings_say_how_many_seeds_plateau_and_whether_the_source_pattern_shows():
    from moe_utils.studies.layer_activation_report import findings

    text = findings(tiny_tables())
    assert "plateaus (3 checkpoints without +0.01) in 2 of 2 seeds, at step 750, 750" in text
    assert "Every seed's accuracy has stopped improving by then." in text
    assert "layers 9–12 rise in every seed and layers 1–4 change by less than the late layers" in text
    assert "0 % of the cells exceed 0.008" in text and "2,400 prompts" in text
    rising = findings(tiny_tables(final_gain=0.04, late_rises=False))
    assert "in 1 of 2 seeds, at step 750; still rising at the end in 1" in rising
    assert "+0.240 (seed 1)" in rising  # 0.5 → 0.74 over the last 4 checkpoints
    assert "layers 9–12 do not rise in every seed and layers 1–4 do not stay flatter" in rising
