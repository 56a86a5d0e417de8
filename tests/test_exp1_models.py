"""exp1.models: gate, expert and mixture math of Experiment 1."""

from __future__ import annotations

import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.exp1.models import (
    LinearExperts,
    LinearGate,
    MixtureOfExperts,
    PreDesignedGate,
    build_four_models,
    build_gate,
    build_mixture,
    nll_loss,
)


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1024, generator=g)
    is_first = torch.arange(n) % 3 == 0
    return x, is_first


def test_pre_designed_gate_routes_exactly():
    x, is_first = batch()
    weights = PreDesignedGate()(x, is_first).exp()
    assert torch.equal(weights[is_first], torch.tensor([[1.0, 0.0]]).expand(int(is_first.sum()), 2))
    assert torch.equal(weights[~is_first], torch.tensor([[0.0, 1.0]]).expand(int((~is_first).sum()), 2))


def test_pre_designed_mixture_equals_the_chosen_expert():
    x, is_first = batch()
    model = build_mixture("pre_designed", seed=0)
    log_y = model(x, is_first)
    experts = model.experts(x)  # [batch, 2, classes]
    chosen = torch.where(is_first[:, None], experts[:, 0], experts[:, 1])
    torch.testing.assert_close(log_y, chosen)


@pytest.mark.parametrize("gate", ["pre_designed", "linear", "mlp"])
def test_mixture_rows_sum_to_one(gate):
    x, is_first = batch()
    y = build_mixture(gate, seed=1)(x, is_first).exp()
    torch.testing.assert_close(y.sum(-1), torch.ones(len(x)))
    assert bool((y >= 0).all())


def test_stable_loss_equals_naive_loss_on_easy_inputs():
    x, is_first = batch()
    labels = torch.arange(len(x)) % 20
    model = build_mixture("linear", seed=2)
    gate = model.gate(x, is_first).exp()  # [batch, 2]
    experts = torch.softmax(
        torch.nn.functional.linear(x, model.experts.weight, model.experts.bias).view(len(x), 2, 20), -1
    )
    naive_y = (gate[:, :, None] * experts).sum(1)  # Σ G_i E_i
    naive = -naive_y[torch.arange(len(x)), labels].log().mean()
    torch.testing.assert_close(nll_loss(model(x, is_first), labels), naive)


def test_stable_loss_is_finite_where_naive_underflows():
    model = build_mixture("linear", seed=3)
    with torch.no_grad():
        model.experts.weight.mul_(0).add_(torch.randn_like(model.experts.weight) * 200)
    x, is_first = batch()
    loss = nll_loss(model(x, is_first), torch.zeros(len(x), dtype=torch.long))
    assert torch.isfinite(loss)


def test_tf_initialisation_is_glorot_uniform_with_zero_bias():
    experts = LinearExperts(2, init="tf")
    bound = (6 / (1024 + 20)) ** 0.5
    assert experts.weight.abs().max() <= bound and experts.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(experts.bias) == 0
    assert torch.count_nonzero(LinearGate(init="tf").linear.bias) == 0
    assert torch.count_nonzero(LinearExperts(2, init="torch").bias) > 0


def test_experts_are_independent_slices():
    experts = LinearExperts(3, init="tf")
    x, _ = batch(4)
    out = experts(x)  # [batch, 3, classes]
    w, b = experts.weight.view(3, 20, 1024), experts.bias.view(3, 20)
    for i in range(3):
        torch.testing.assert_close(out[:, i], torch.log_softmax(x @ w[i].T + b[i], -1))


def test_same_seed_same_models_different_seed_different():
    a, b, c = build_four_models(seed=5), build_four_models(seed=5), build_four_models(seed=6)
    for name in a:
        for pa, pb, pc in zip(a[name].parameters(), b[name].parameters(), c[name].parameters()):
            assert torch.equal(pa, pb)
            assert not torch.equal(pa, pc) or torch.count_nonzero(pa) == 0


def test_bad_names_give_one_line_errors():
    with pytest.raises(MoeError, match="GATE='softmax' is not allowed; choose one of 'pre_designed', 'linear', 'mlp'"):
        build_gate("softmax")
    with pytest.raises(MoeError, match="INIT='he'"):
        LinearExperts(2, init="he")
    with pytest.raises(MoeError, match="2 outputs"):
        MixtureOfExperts(LinearExperts(3), PreDesignedGate())
