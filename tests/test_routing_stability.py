"""Routing stability: Jaccard on hand-made sets, selection sets vs brute force, σ=0, soft Jaccard, seeded noise."""
from __future__ import annotations

import pytest
import torch
from configs import make_config, make_router  # tests/configs.py

from moe_utils.errors import MoeError
from moe_utils.moe.transformer import image_to_patches
from moe_utils.studies.routing_stability import (
    RoutingFluctuation,
    RunSpec,
    consistency_loss,
    input_noise_curves,
    jaccard,
    relative_noise,
    selection_grid,
    selection_sets,
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
    images, labels, is_mnist = tiny_images(40, 3)
    probe = image_to_patches(images[:8], 4)
    spec = RunSpec("reg", lam=1.0, sigma=0.5)
    model, history, fluct, _ = train_run(spec, TINY, images, labels, probe, 6, 8, 1e-2, 4, 0, 2)
    assert len(history) == 6 and "consistency" in history and set(fluct["layer"]) == {0, 1}
    curves = stability_curves(model, images, is_mnist, [0.0, 3.0], patch=4, seed=0, batch_size=16)
    zero = curves[curves.sigma == 0]
    assert (zero.jaccard == 1.0).all() and (zero.changed == 0.0).all()
    assert len(zero) == 4 and zero.tokens.sum() == 2 * 40 * 16  # 2 layers, 40 images x 16 tokens
    assert (curves[curves.sigma == 3.0].jaccard < 1.0).all()
    grid = selection_grid(model, images[0], 0.0, patch=4, seed=0, tokens=3)
    assert (grid.E_orig == grid.E_pert).all() and (grid.intersection == grid.union).all()
    at_input = input_noise_curves(model, images, is_mnist, [0.0, 3.0], patch=4, seed=0, batch_size=16)
    zero = at_input[at_input.sigma == 0]
    assert (zero.jaccard == 1.0).all() and (zero.changed == 0.0).all() and zero.tokens.sum() == 2 * 40 * 16
    assert (at_input[at_input.sigma == 3.0].jaccard < 1.0).all() and set(at_input.noise_at) == {"model input"}


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
    from moe_utils.moe.transformer import TransformerModel

    model = TransformerModel(TINY, input="patches", patch_dim=16, n_classes=20)
    model(torch.rand(2, 16, 16, generator=gen(7)))
    assert consistency_loss(model, 0.0, gen(0)).item() == pytest.approx(0.0, abs=1e-6)
    assert consistency_loss(model, 1.0, gen(0), "scaled").item() > 0


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
