"""Router: top-k selection, aux-free bias, bias updates, sequence-wise aux loss, noisy gating, argument checks."""

from __future__ import annotations

import pytest
import torch
from configs import make_router  # tests/configs.py

from moe_utils.errors import MoeError
from moe_utils.measures.routing import max_violation
from moe_utils.moe.router import sequence_aux_loss


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_tokens(shape, seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
@pytest.mark.parametrize("normalize_topk", [True, False])
def test_topk_matches_brute_force(scoring, normalize_topk):
    router = make_router(6, 5, 2, scoring=scoring, normalize_topk=normalize_topk, generator=gen(1))
    x = random_tokens((3, 4, 6))
    routing = router(x)
    logits = x @ router.gate.weight.T
    scores = (logits.softmax(-1) if scoring == "softmax" else logits.sigmoid()).detach()
    torch.testing.assert_close(routing.scores, scores)
    for b in range(3):
        for s in range(4):
            ranked = sorted(range(5), key=lambda e: -float(scores[b, s, e]))[:2]
            assert routing.topk_idx[b, s].tolist() == ranked
            weights = scores[b, s, ranked]
            if normalize_topk:
                weights = weights / weights.sum()
            torch.testing.assert_close(routing.topk_weight[b, s], weights)
    assert routing.load.tolist() == torch.bincount(routing.topk_idx.flatten(), minlength=5).float().tolist()
    assert routing.load.sum() == 3 * 4 * 2
    assert routing.aux_loss.item() == 0.0


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
def test_expert_bias_changes_selection_not_weights(scoring):
    plain = make_router(6, 4, 2, scoring=scoring, balancing="aux_free", generator=gen(2))
    biased = make_router(6, 4, 2, scoring=scoring, balancing="aux_free", generator=gen(2))
    biased.expert_bias[3] = 10.0  # expert 3 always selected
    x = random_tokens((2, 8, 6))
    a, b = plain(x), biased(x)
    torch.testing.assert_close(a.scores, b.scores)
    assert (b.topk_idx == 3).any(-1).all()
    assert not (a.topk_idx == 3).any(-1).all()  # the bias really changed some selections
    weights = b.scores.gather(-1, b.topk_idx)
    torch.testing.assert_close(b.topk_weight, weights / weights.sum(-1, keepdim=True))  # unbiased affinities


def test_update_bias_moves_toward_balance():
    router = make_router(4, 8, 2, scoring="sigmoid", balancing="aux_free", bias_update_rate=0.01, generator=gen(3))
    with torch.no_grad():
        router.gate.weight[:, 0] = torch.linspace(2.0, -2.0, 8)  # feature 0 is constant 1 below: a skew
    x = random_tokens((4, 64, 4), seed=4)
    x[..., 0] = 1.0
    violations = []
    for _ in range(150):
        routing = router(x)
        violations.append(max_violation(routing.load))
        router.update_bias(routing.load)
    assert violations[0] > 1.0
    assert violations[-1] < 0.3 * violations[0]
    assert router.expert_bias[0] < 0 < router.expert_bias[-1]  # overloaded expert pushed down
    assert not router.expert_bias.requires_grad
    assert "expert_bias" in router.state_dict()


def test_update_bias_step_is_sign_rule():
    router = make_router(2, 3, 1, balancing="aux_free", bias_update_rate=0.5)
    router.update_bias(torch.tensor([6.0, 2.0, 1.0]))  # mean 3
    assert router.expert_bias.tolist() == [-0.5, 0.5, 0.5]


def test_max_violation():
    assert max_violation(torch.tensor([2.0, 2.0, 2.0])) == 0.0
    assert max_violation(torch.tensor([6.0, 0.0, 0.0])) == pytest.approx(2.0)


# Two sequences of T=2 tokens, E=2 experts, K=1, sigmoid affinities chosen by hand.
HAND_SCORES = torch.tensor([[[0.6, 0.2], [0.5, 0.3]], [[0.1, 0.3], [0.2, 0.6]]])
# seq 0: both tokens -> expert 0: f = (2, 0); s' rows (.75,.25), (.625,.375): P_0 = .6875 -> 1.375
# seq 1: both tokens -> expert 1: f = (0, 2); s' rows (.25,.75), (.25,.75): P_1 = .75 -> 1.5
# sequence scope: mean = 1.4375; batch scope: f = (1, 1), P = (.46875, .53125) -> 1.0
HAND_LOSS = {"sequence": 1.4375, "batch": 1.0}


@pytest.mark.parametrize("scope", ["sequence", "batch"])
def test_sequence_aux_loss_by_hand(scope):
    topk = HAND_SCORES.topk(1, dim=-1).indices
    assert topk.flatten().tolist() == [0, 0, 1, 1]
    loss = sequence_aux_loss(HAND_SCORES, topk, alpha=0.1, scope=scope)
    assert loss.item() == pytest.approx(0.1 * HAND_LOSS[scope], rel=1e-6)


@pytest.mark.parametrize("scope", ["sequence", "batch"])
def test_router_aux_loss_end_to_end(scope):
    router = make_router(2, 2, 1, scoring="sigmoid", balancing="aux_loss", aux_loss_alpha=0.1, aux_loss_scope=scope)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(2))
    x = torch.log(HAND_SCORES / (1 - HAND_SCORES)).requires_grad_()  # sigmoid(x) = hand scores
    routing = router(x)
    assert routing.aux_loss.item() == pytest.approx(0.1 * HAND_LOSS[scope], rel=1e-5)
    routing.aux_loss.backward()
    if scope == "sequence":  # P_i carries the gradient (batch scope here has f = (1, 1): a constant loss)
        assert router.gate.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
def test_noisy_gating_uses_only_the_given_generator(scoring):
    router = make_router(6, 8, 2, scoring=scoring, noise="noisy_topk", generator=gen(5))
    x = random_tokens((2, 16, 6))
    torch.manual_seed(123)
    first = router(x, gen(7))
    torch.manual_seed(456)  # the global RNG must not matter
    same = router(x, gen(7))
    other = router(x, gen(8))
    assert torch.equal(first.scores, same.scores) and torch.equal(first.topk_idx, same.topk_idx)
    assert not torch.equal(first.scores, other.scores)
    router.noise_generator = gen(7)  # the attribute is the fallback
    assert torch.equal(router(x).scores, first.scores)
    router.noise_generator = None
    with pytest.raises(MoeError, match="generator"):
        router(x)
    router.eval()  # no noise outside training
    clean = (x @ router.gate.weight.T).softmax(-1) if scoring == "softmax" else (x @ router.gate.weight.T).sigmoid()
    torch.testing.assert_close(router(x).scores, clean)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_experts": 0}, "n_experts"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 5}, "top_k"),
        ({"d_model": -1}, "d_model"),
        ({"scoring": "relu"}, "scoring"),
        ({"noise": "gaussian"}, "noise"),
        ({"balancing": "loss_free"}, "balancing"),
        ({"aux_loss_scope": "token"}, "aux_loss_scope"),
        ({"aux_loss_alpha": -0.1}, "aux_loss_alpha"),
        ({"bias_update_rate": -1.0}, "bias_update_rate"),
        ({"normalize_topk": "yes"}, "normalize_topk"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs, name):
    args = {"d_model": 4, "n_experts": 4, "top_k": 2} | kwargs
    with pytest.raises(MoeError, match=name) as info:
        make_router(**args)
    assert "\n" not in str(info.value)


def test_update_bias_needs_aux_free_and_right_shape():
    with pytest.raises(MoeError, match="balancing"):
        make_router(4, 4, 2).update_bias(torch.ones(4))
    with pytest.raises(MoeError, match="n_experts"):
        make_router(4, 4, 2, balancing="aux_free").update_bias(torch.ones(3))
    with pytest.raises(MoeError, match="x.shape"):
        make_router(4, 4, 2)(torch.ones(2, 4))
