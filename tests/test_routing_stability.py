"""Routing stability: Jaccard on hand-made sets, selection sets vs brute force, σ=0, soft Jaccard, seeded noise."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from configs import make_config, make_router  # tests/configs.py

from moe_utils.errors import MoeError
from moe_utils.moe.transformer import TransformerModel, image_to_patches
from moe_utils.studies.routing_stability.job import pooled_curves
from moe_utils.studies.routing_stability.method import (
    RoutingFluctuation,
    RunSpec,
    block_input_curves,
    consistency_loss,
    input_noise_curves,
    jaccard,
    relative_noise,
    selection_grid,
    selection_sets,
    sequence_relative_noise,
    soft_jaccard,
    stability_curves,
    surrogate_probs,
    train_run,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one intra-op thread (and far faster than two on a shared, busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = make_config(d_model=16, n_heads=2, n_layers=2, d_expert=8, n_experts=4, top_k=2, max_len=16)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sets(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def test_jaccard_on_hand_made_sets():
    a = sets([1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0])
    b = sets([1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0])
    assert jaccard(a, b).tolist() == pytest.approx([1.0, 0.0, 1 / 3, 1 / 4, 1.0])
    assert jaccard(a, b).tolist() == jaccard(b, a).tolist()
    with pytest.raises(MoeError, match="differ"):
        jaccard(a, b[:, :3])


def test_selection_sets_match_brute_force_top_k():
    router = make_router(6, 5, 2, generator=gen(1))
    x = torch.randn(3, 4, 6, generator=gen(2))
    chosen = selection_sets(router(x).topk_idx, 5)  # [3, 4, 5]
    scores = (x @ router.gate.weight.T).softmax(-1)
    for b in range(3):
        for s in range(4):
            ranked = sorted(range(5), key=lambda e: -float(scores[b, s, e].detach()))[:2]
            assert chosen[b, s].nonzero().flatten().tolist() == sorted(ranked)
    assert chosen.sum(-1).eq(2).all()
    with pytest.raises(MoeError, match="outside 0..4"):
        selection_sets(torch.tensor([[5, 0]]), 5)


def tiny_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.randint(0, 256, (n, 16, 16), generator=gen(seed), dtype=torch.uint8)
    labels = torch.arange(n) % 20
    return images, labels, labels < 10


def test_sigma_zero_gives_jaccard_one_for_a_trained_model_and_noise_lowers_it():
    images, labels, is_first = tiny_images(40, 3)
    probe = image_to_patches(images[:8], 4)
    spec = RunSpec("reg", lam=1.0, sigma=0.5)
    model, history, fluct, _ = train_run(spec, TINY, images, labels, probe, 6, 8, 1e-2, 4, 0, 2)
    assert len(history) == 6 and "consistency" in history and set(fluct["layer"]) == {1, 2}  # numbered from 1
    curves = stability_curves(model, images, is_first, [0.0, 3.0], patch=4, seed=0, batch_size=16)
    zero = curves[curves.sigma == 0]
    assert (zero.jaccard == 1.0).all() and (zero.changed == 0.0).all()
    assert len(zero) == 4 and zero.tokens.sum() == 2 * 40 * 16  # 2 layers, 40 images x 16 tokens
    assert (curves[curves.sigma == 3.0].jaccard < 1.0).all()
    grid = selection_grid(model, images[0], 0.0, patch=4, seed=0, tokens=3)
    assert (grid.E_orig == grid.E_pert).all() and (grid.intersection == grid.union).all()
    assert set(curves.layer) == {1, 2} and set(grid.token) == {1, 2, 3} and set(grid.expert) == {1, 2, 3, 4}  # from 1
    at_input = input_noise_curves(model, images, is_first, [0.0, 3.0], patch=4, seed=0, batch_size=16)
    zero = at_input[at_input.sigma == 0]
    assert (zero.jaccard == 1.0).all() and (zero.changed == 0.0).all() and zero.tokens.sum() == 2 * 40 * 16
    assert (at_input[at_input.sigma == 3.0].jaccard < 1.0).all() and set(at_input.noise_at) == {"model input"}
    at_block = block_input_curves(model, images, is_first, [0.0, 3.0], patch=4, seed=0, batch_size=16)
    zero = at_block[at_block.sigma == 0]
    assert (zero.jaccard == 1.0).all() and (zero.changed == 0.0).all() and set(at_block.noise_at) == {"block input"}
    assert (at_block[at_block.sigma == 3.0].jaccard < 1.0).all()


def test_block_input_noise_reaches_a_token_that_is_zero():
    x = torch.randn(2, 5, 8, generator=gen(7))
    x[:, 2] = 0.0  # an all-zero token (an all-black patch under per-token noise)
    per_token = relative_noise(x, 0.5, gen(8))
    per_sequence = sequence_relative_noise(x, 0.5, gen(8))
    assert torch.equal(per_token[:, 2], torch.zeros(2, 8))  # per-token rms: no noise at all
    assert (per_sequence[:, 2].abs() > 0).all()  # the sequence's rms: perturbed like its neighbours
    big = torch.randn(4, 64, 32, generator=gen(10)) * 3.0
    scale = ((sequence_relative_noise(big, 0.5, gen(11)) - big) / big.pow(2).mean((-2, -1), keepdim=True).sqrt()).std()
    assert abs(float(scale) - 0.5) < 0.02  # σ is relative to the sequence's rms
    assert torch.equal(sequence_relative_noise(x, 0.0, gen(9)), x)


def test_soft_jaccard_is_one_for_identical_inputs_and_differentiable():
    router = make_router(8, 6, 2, generator=gen(4))
    x = torch.randn(2, 5, 8, generator=gen(5), requires_grad=True)
    for kind in ("probs", "scaled"):
        p = surrogate_probs(router, x, kind)
        torch.testing.assert_close(soft_jaccard(p, surrogate_probs(router, x, kind)), torch.ones(2, 5))
        q = surrogate_probs(router, relative_noise(x, 0.5, gen(6)), kind)
        sj = soft_jaccard(p, q)
        assert (sj < 1).all() and (sj > 0).all()
        (1 - sj).mean().backward()
        assert router.gate.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
        router.zero_grad(), x.grad.zero_()
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.5, 0.5])
    assert soft_jaccard(p, q).item() == pytest.approx(1 / 3)  # binary-like vectors: the hard Jaccard


def test_consistency_loss_vanishes_without_noise():
    from moe_utils.measures.hooks import record
    from moe_utils.moe.transformer import TransformerModel

    model = TransformerModel(TINY, input="patches", patch_dim=16, n_classes=20)
    with record(model.routers()) as seen:
        model(torch.rand(2, 16, 16, generator=gen(7)))
    assert consistency_loss(model, seen, 0.0, gen(0)).item() == pytest.approx(0.0, abs=1e-6)
    assert consistency_loss(model, seen, 1.0, gen(0), "scaled").item() > 0


def test_noise_uses_an_explicit_generator():
    x = torch.randn(4, 3, 8, generator=gen(8))
    a, b, c = relative_noise(x, 0.3, gen(9)), relative_noise(x, 0.3, gen(9)), relative_noise(x, 0.3, gen(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(relative_noise(x, 0.0, gen(9)), x)
    rel = ((relative_noise(x * 100, 0.3, gen(9)) - x * 100) / 100 - (a - x)).abs().max()
    assert rel < 1e-4  # the noise scales with the input's RMS
    with pytest.raises(MoeError, match="generator=None"):
        relative_noise(x, 0.3, None)
    with pytest.raises(MoeError, match="sigma=-1"):
        relative_noise(x, -1, gen(0))


def test_fluctuation_and_run_spec_checks():
    images, labels, _ = tiny_images(16, 11)
    from moe_utils.moe.transformer import TransformerModel

    model = TransformerModel(TINY, input="patches", patch_dim=16, n_classes=20)
    fluct = RoutingFluctuation(model, image_to_patches(images[:4], 4), every=1)
    fluct(0, {}), fluct(1, {})
    assert fluct.frame().changed.tolist() == [0.0, 0.0]  # same weights: nothing changed
    assert model.training
    with pytest.raises(MoeError, match="sigma=0 is not allowed"):
        RunSpec("bad", lam=1.0, sigma=0.0)
    with pytest.raises(MoeError, match="surrogate='kl'"):
        RunSpec("bad", surrogate="kl")


def test_pooled_curves_weight_by_tokens():
    curves = pd.DataFrame(
        {
            "run": "r",
            "noise_at": "router input",
            "seed": 0,
            "sigma": 0.5,
            "layer": [0, 1],
            "jaccard": [1.0, 0.0],
            "changed": [0.0, 1.0],
            "tokens": [30, 10],
        }
    )
    out = pooled_curves(curves).iloc[0]
    assert out.jaccard == pytest.approx(0.75) and out.changed == pytest.approx(0.25)


def tiny_stability_tables(noisy_jaccard: float = 0.9, collapsed_seeds: int = 1):
    """Hand-made notebook-04 tables: 2 seeds, 2 layers, the sweep of the default settings at one σ."""
    from types import SimpleNamespace

    from moe_utils.studies.routing_stability.settings import StabilitySettings

    s = StabilitySettings()
    runs = ["baseline", s.lam_run, "baseline + balance", s.balanced_run]
    per_seed = pd.DataFrame(
        [
            {
                "run": r,
                "seed": seed,
                "changed": 0.4,
                "changed_model_input": 0.2,
                "changed_block_input": 0.3,
                "experts_used_layer1": 2.0 if (r == s.lam_run and seed < collapsed_seeds) else 6.0,
                "router_top1_prob": 0.13 if r == s.balanced_run else 0.4,
                "router_logit_std": 0.18 if r == s.balanced_run else 1.2,
                "churn_last_quarter": 0.9 if r == s.balanced_run else 0.2,
                "flipped": 0.05 if r == "baseline" else 0.02,
                "acc_change": -0.01,
            }
            for r in runs
            for seed in (0, 1)
        ]
    )
    band = pd.DataFrame(
        [
            {"run": "baseline", "noise_at": where, "sigma": x, "jaccard_mean": 0.5, "jaccard_std": 0.1}
            for where in ("router input", "block input", "model input")
            for x in (0.1, 0.5, 1.0, 2.0)
        ]
    )
    curves = pd.DataFrame(
        [
            {"run": "baseline", "sigma": 0.5, "layer": layer, "dataset": d, "jaccard": j, "tokens": n}
            for layer in (1, 2)
            for d, j, n in (("mnist", 0.5 + 0.1 * layer, 300), ("cifar", 0.6 + 0.1 * layer, 100))
        ]
    )
    pairs = [(s.lam_run, "baseline"), (s.balanced_run, "baseline + balance"), (s.balanced_run, "baseline")]
    margins = pd.DataFrame(
        [
            {"a": a, "b": b, "value": v, "mean": 0.1, "std": 0.01, "n": 2, "holds": 2, "below": 0}
            for a, b in pairs
            for v in ("jaccard", "acc", "jaccard_block_input", "jaccard_model_input", "flipped", "acc_noisy")
        ]
    )
    churn = pd.DataFrame(
        {
            "run": ["baseline", "λ=3", "baseline", "λ=3"],
            "seed": [0, 0, 1, 1],
            "steps_trained": [500] * 4,
            "churn_last_quarter": [0.3, 0.1, 0.25, 0.2],
            "churn_at_end": [0.0, 0.0, 0.06, 0.01],
            "settled": [True, True, False, True],
            "collapsed": [False, True, False, False],
        }
    )
    sigma_margins = pd.DataFrame(
        [
            {"sigma": x, "a": s.balanced_run, "b": "baseline + balance", "mean": 0.1, "std": 0.01, "n": 2}
            | {"holds": 2 if x <= 1 else 1, "below": 0 if x <= 1 else 1}
            for x in (0.1, 0.5, 1.0, 2.0)
        ]
    )
    table = pd.DataFrame(
        [
            {
                "run": "baseline",
                "kind": "baseline",
                "lam": 0,
                "balance_alpha": 0,
                "surrogate": "scaled",
                "jaccard": 0.8,
                "acc": 0.5,
                "experts_used_layer1": 6.0,
                "router_top1_prob": 0.4,
            },
            {
                "run": "λ=3",
                "kind": "consistency",
                "lam": 3,
                "balance_alpha": 0,
                "surrogate": "scaled",
                "jaccard": 0.99,
                "acc": 0.45,
                "experts_used_layer1": 2.0,
                "router_top1_prob": 0.4,
            },
            {
                "run": "noisy top-k",
                "kind": "noisy_topk",
                "lam": 0,
                "balance_alpha": 0,
                "surrogate": "scaled",
                "jaccard": noisy_jaccard,
                "acc": 0.5,
                "experts_used_layer1": 6.0,
                "router_top1_prob": 0.4,
            },
        ]
    )
    grid = pd.DataFrame({"token": [1, 2, 3, 4], "intersection": [2, 1, 0, 2], "union": [2, 3, 4, 2]})
    fluct = pd.DataFrame({"second_half_mean": [0.3, 0.05]}, index=["baseline", "λ=3"])
    return SimpleNamespace(
        settings=s,
        dataset_names=("MNIST", "CIFAR"),
        per_seed=per_seed,
        band=band,
        curves=curves,
        margins=margins,
        table=table,
        grid=grid,
        fluctuation_summary=fluct,
        churn=churn,
        sigma_margins=sigma_margins,
    )


def test_findings_count_collapsed_seeds_and_judge_noisy_top_k():
    from moe_utils.studies.routing_stability.report import findings

    text = findings(tiny_stability_tables()).replace("\n", " ")
    assert "0.500 ± 0.100 / 0.500 ± 0.100 / 0.500 ± 0.100 / 0.500 ± 0.100 at σ = 0.1 / 0.5 / 1 / 2" in text
    assert "collapses onto 2 experts (exp-entropy of its load ≤ 2.05) in 1 of 2 seeds" in text
    assert "Of the 4 tokens drawn at σ = 0.5, 1 swap part of their expert set, 2 keep it whole and 1 lose it" in text
    assert "layer 1 0.625, last layer 0.725" in text and "baseline 30 %; λ=3 5 %" in text  # token-weighted
    assert "block run again): J = 0.500 ± 0.100" in text and "30.0 ± 0.0 % changed at σ = 0.5" in text
    assert "λ=3 0.990 / 0.450 (−5.0 points)" in text and "same 2 experts: λ=3." in text
    assert "Noisy top-k gating** (seed 0, one seed's observation: it is not in the seed study) is a stability" in text
    assert "over the last quarter of training 10 %–30 % across the 4 runs, at the last check 0 %–6 %" in text
    assert "3 of 4 runs settled (below 5 % at the last check); 1 of the settled runs have layer 1 collapsed" in text
    assert "mean top-1 router probability 0.130 ± 0.000 (uniform 0.125" in text and "90 ± 0 % of probe tokens" in text
    assert "baseline 5.0 ± 0.0 % flipped, accuracy −1.0 ± 0.0 points" in text
    assert "it is higher in every seed at 3 of 4 evaluation σ" in text and "σ = 0.5 (trained): +0.100" in text
    other = findings(tiny_stability_tables(noisy_jaccard=0.81, collapsed_seeds=2)).replace("\n", " ")
    assert "is not a stability method for input noise here: J = 0.810 vs 0.800" in other and "in 2 of 2 seeds" in other


def test_every_run_trains_exactly_steps_and_its_learning_rate_reaches_zero_at_the_last_step():
    from moe_utils.moe.training import warmup_cosine

    assert [warmup_cosine(i, 10, 2) for i in (0, 1, 2)] == [0.5, 1.0, 1.0] and warmup_cosine(9, 10, 2) == 0.0
    assert all(warmup_cosine(i, 10, 2) > warmup_cosine(i + 1, 10, 2) for i in range(2, 9))  # cosine decay to 0
    with pytest.raises(MoeError, match="warmup=10 is not allowed"):
        warmup_cosine(0, 10, 10)
    images, labels, _ = tiny_images(40, 3)
    probe = image_to_patches(images[:8], 4)
    run = train_run(RunSpec("baseline"), TINY, images, labels, probe, 6, 8, 1e-2, 4, 0, 2, warmup=2)
    assert len(run.history) == 6 and run.history["lr"].iloc[-1] == 0.0
    assert run.history["lr"].tolist()[:2] == pytest.approx([5e-3, 1e-2])


def test_churn_and_prediction_flips_on_a_hand_made_model():
    from moe_utils.studies.routing_stability.job import churn_row
    from moe_utils.studies.routing_stability.method import noisy_routers, prediction_flips
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    fluct = pd.DataFrame(
        {"step": [2, 2, 4, 4, 6, 6, 8, 8], "layer": [1, 2] * 4, "changed": [0.5, 0.2, 0.4, 0.3, 0.1, 0.0, 0.02, 0.03]}
    )
    row = churn_row(StabilitySettings(), pd.DataFrame({"step": range(8)}), fluct, experts_used_layer1=2.01)
    assert row["churn_at_end"] == 0.03 and row["churn_last_quarter"] == 0.03  # only the check at step 8 is > 6
    assert row["settled"] and row["collapsed"] and row["steps_trained"] == 8
    images, labels, _ = tiny_images(40, 3)
    model = TransformerModel(TINY, input="patches", patch_dim=16, n_classes=3, seed=0).eval()
    flips = prediction_flips(model, images, labels, [0.0, 5.0], 4, seed=0).set_index("sigma")
    assert flips.loc[0.0, "flipped"] == 0.0 and flips.loc[0.0, "acc_change"] == 0.0  # σ = 0: the clean forward
    with torch.no_grad():
        clean = model(image_to_patches(images, 4)).argmax(-1)
        with noisy_routers(model, 5.0, torch.Generator().manual_seed(0)):
            noisy = model(image_to_patches(images, 4)).argmax(-1)
    assert flips.loc[5.0, "flipped"] == pytest.approx(float((noisy != clean).float().mean()))  # the same draws
    assert flips.loc[5.0, "acc_clean"] == pytest.approx(float((clean == labels).float().mean()))
    assert not model.moe_layers[0].router._forward_pre_hooks  # the hooks are gone afterwards
