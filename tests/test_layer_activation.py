"""Notebook 07's study: checkpoints, per-layer measures, unnormalised trends, settings and Findings."""

from __future__ import annotations

import pandas as pd
import pytest

from moe_utils.errors import MoeError
from moe_utils.studies.layer_activation.job import layer_trends


def test_layer_trends_count_rising_layers_without_rescaling():
    rows = [
        {"seed": 0, "step": step, "layer": layer, "q": (1 + layer) * (2.0 if step == 20 else 1.0)}
        for step in (10, 20)
        for layer in range(1, 13)
    ]
    t = layer_trends(pd.DataFrame(rows), "q").iloc[0]
    assert t["layers rising"] == 12  # every layer doubles: a share could not show this
    assert t["late layers last"] == pytest.approx(2 * t["late layers first"])


def test_one_plateau_rule_separates_a_late_rise_from_noise():
    from moe_utils.studies.layer_activation.method import plateau_verdict

    steps = list(range(250, 4001, 250))  # 16 checkpoints: the last quarter is 4
    flat = [0.5 + 0.3 * min(1, s / 2000) + (0.005 if i % 2 else -0.005) for i, s in enumerate(steps)]
    verdict = plateau_verdict(steps, flat, n_prompts=2400)
    assert verdict["plateaued"] and verdict["from step"] == 3250 and abs(verdict["gain over the last quarter"]) < 0.01
    assert verdict["threshold"] == pytest.approx(2 * (2 * 0.8 * 0.2 / 2400) ** 0.5, rel=0.05)
    rising = flat[:-4] + [flat[-5] + 0.013 * (i + 1) for i in range(4)]  # +0.039 over the last quarter
    late = plateau_verdict(steps, rising, n_prompts=2400)
    assert not late["plateaued"] and late["gain over the last quarter"] == pytest.approx(0.039, abs=0.002)
    with pytest.raises(MoeError, match="at least 3 checkpoints"):
        plateau_verdict([1, 2], [0.1, 0.2], n_prompts=10)


def test_rank_trends_read_every_checkpoint_not_the_first_and_last():
    from moe_utils.studies.layer_activation.job import rank_trends

    steps = [1, 2, 3, 4, 5, 6]
    rows = [
        {"seed": 0, "step": st, "layer": 1, "q": [1.0, 6.0, 5.0, 4.0, 3.0, 2.0][i]}  # a transient, then falling
        for i, st in enumerate(steps)
    ] + [{"seed": 0, "step": st, "layer": 2, "q": float(st)} for st in steps]
    ranks = rank_trends(pd.DataFrame(rows), "q").set_index("layer")["spearman"]
    assert ranks[2] == pytest.approx(1.0) and ranks[1] < 0  # first < last for layer 1, yet it falls through training


def test_the_layer_share_sums_to_one_and_is_invariant_to_scaling_the_loss():
    import torch

    from moe_utils.datasets.cognitive_tasks import ASCII_VOCAB_SIZE, make_task_data
    from moe_utils.moe.transformer import TransformerConfig, TransformerModel
    from moe_utils.studies.layer_activation.method import gradient_measures, relative_residual_updates

    _, held, _ = make_task_data(seed=3, n_train=20, n_held_out=8)
    config = TransformerConfig(d_model=16, n_heads=4, n_layers=3, ffn="dense", d_ff=32, causal=True, max_len=20)
    model = TransformerModel(config, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=0)
    one, ten = gradient_measures(model, held), gradient_measures(model, held, loss_scale=10.0)
    assert torch.allclose(ten["raw"], 10 * one["raw"], rtol=1e-4)  # the raw gradient follows the loss's scale
    assert torch.allclose(ten["layer share"], one["layer share"], rtol=1e-4)  # the within-checkpoint share does not
    assert torch.allclose(one["layer share"].sum(), torch.tensor(1.0))  # and it sums to 1 at the checkpoint
    relative = relative_residual_updates(model, held.tokens)
    assert relative.shape == (3,) and (relative > 0).all()
    with torch.no_grad():
        model.embed.weight.mul_(5.0)  # a residual stream five times larger at the input
    assert not torch.allclose(relative_residual_updates(model, held.tokens), relative)


def tiny_tables(final_gain: float = 0.0, late_rises: bool = True, near_gain: float = 0.0):
    """Hand-made notebook-07 tables: 2 seeds, 5 checkpoints, 12 layers; seed 1 still rises when ``final_gain`` > 0;
    the raw gradient rises in the late layers (``late_rises``), its layer share is computed from it per checkpoint,
    the raw update rises in every layer; seed 0 gains ``near_gain`` over its last quarter (plateaued)."""
    from types import SimpleNamespace

    from moe_utils.studies.layer_activation.job import rank_trends
    from moe_utils.studies.layer_activation.method import ALL_HELD_OUT
    from moe_utils.studies.layer_activation.run import QUANTITIES, rank_summary
    from moe_utils.studies.layer_activation.settings import LayerActivationSettings

    steps = [250, 500, 750, 1000, 1250]
    progress = pd.DataFrame(
        [
            {
                "seed": s,
                "step": st,
                ALL_HELD_OUT: 0.5 + 0.05 * min(i, 2) + (final_gain * (i - 2) * (i > 2) if s == 1 else 0),
            }
            for s in (0, 1)
            for i, st in enumerate(steps)
        ]
    )
    plateaus = pd.DataFrame(
        {
            "seed": [0, 1],
            "final accuracy": [0.60, 0.60 + 2 * final_gain],
            "from step": [750, 750],
            "gain over the last quarter": [near_gain, 2 * final_gain],
            "threshold (2 sampling errors)": [0.028, 0.028],
            "margin (threshold - gain)": [0.028 - near_gain, 0.028 - 2 * final_gain],
            "rise over the last quarter": [near_gain + 0.01, 2 * final_gain],
            "plateaued": ["yes", "yes" if final_gain == 0 else "no: still rising"],
        }
    )
    rows = []
    for seed in (0, 1):
        for i, st in enumerate(steps):
            for layer in range(1, 13):
                late = layer >= 5
                gradient = 1.0 + (0.5 * i if late and late_rises else 0.0) + 0.01 * ((i + layer) % 2)
                rows.append(
                    {
                        "seed": seed,
                        "step": st,
                        "layer": layer,
                        "importance share per head": 1 / 144 + 0.001 * ((i * layer) % 3),
                        "raw mean |head-mask gradient|": gradient,
                        "raw mean |residual update|": 1.0 + 0.1 * i,
                        "relative residual update": 1.0 - 0.01 * i,
                    }
                )
    per_layer = pd.DataFrame(rows)
    gradient = per_layer.groupby(["seed", "step"])["raw mean |head-mask gradient|"].transform("sum")
    per_layer["layer share of |head-mask gradient|"] = per_layer["raw mean |head-mask gradient|"] / gradient
    ranks = pd.concat([rank_trends(per_layer, q) for q in QUANTITIES], ignore_index=True)
    return SimpleNamespace(
        settings=LayerActivationSettings(),
        progress=progress,
        plateaus=plateaus,
        per_layer=per_layer,
        first=SimpleNamespace(per_layer=per_layer[per_layer.seed == 0]),
        rank_summary=rank_summary(ranks),
        info={"held-out prompts": 2400},
    )


def test_findings_say_how_many_seeds_plateau_and_answer_the_sources_claim():
    from moe_utils.studies.layer_activation.report import findings

    text = findings(tiny_tables()).replace("\n", " ")
    assert "By it 2 of 2 seeds have plateaued (gains 0.000 ± 0.000)" in text and "2,400 prompts" in text
    assert "of the map's cells exceed 0.008" in text
    assert "(b) raw mean |∂L/∂m_h| rises in most layers: up in 8 of 12 layers (5–12), down in 0 (none)" in text
    assert "(b) raw mean |∂L/∂m_h| matches it" in text
    assert (
        "(e) ‖update‖ / ‖residual‖ does **not** rise in most layers: up in 0 of 12 layers (none), down in 12 (1–12)"
        in text
    )
    assert (
        "later layers gain relative importance (of layers 5–12, 5–12 rise in every seed) while early layers do "
        "**not** stay flat (layers 1–4 move): source 002's picture is supported in part here" in text
    )  # the late layers' rise in (b) shows in their share, and the early layers' share falls with it
    rising = findings(tiny_tables(final_gain=0.04, late_rises=False, near_gain=0.025)).replace("\n", " ")
    assert "By it 1 of 2 seeds have plateaued — near misses" in rising
    assert "seed 0 gains 0.025 against 0.028 (its last quarter's checkpoints differ by +0.035)" in rising
    assert "still rising at the end: +0.080 (seed 1), against 0.025 for the plateaued ones" in rising
    assert "(b) raw mean |∂L/∂m_h| does **not** match it (of layers 5–12, 5–12 do not rise in every seed)" in rising
    assert (
        "later layers do **not** gain while early layers stay flat: source 002's picture is **not supported**" in rising
    )
