"""Acceptance tests for notebook 05: relative load, balancing through the notebook's configs, specialisation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.moe.router import Router, max_violation
from moe_utils.moe.transformer import TransformerModel
from moe_utils.runtime import make_generator
from moe_utils.studies.expert_load import (
    domain_specialisation,
    global_maxvio,
    held_out_routing,
    lm_config,
    mixed_domain_batch,
    relative_load,
    specialisation_table,
    training_maxvio,
)


def router_from(config, d_model, generator):
    """A Router with exactly the routing settings the notebook's config gives its MoE layers."""
    return Router(d_model, config.router, generator=generator)


@pytest.mark.parametrize("n_experts,k,shape", [(8, 2, (3, 17)), (5, 1, (40,)), (16, 4, (2, 3, 5))])
def test_relative_load_averages_exactly_one(n_experts, k, shape):
    g = make_generator(0)
    scores = torch.rand(*shape, n_experts, generator=g)
    topk = scores.topk(k, dim=-1).indices
    rel = relative_load(topk, n_experts)
    assert rel.shape == (n_experts,)
    assert rel.mean().item() == pytest.approx(1.0, abs=1e-12)
    skewed = torch.zeros(*shape, k, dtype=torch.long) + torch.arange(k)  # every token to experts 0..k-1
    rel = relative_load(skewed, n_experts)
    assert rel.mean().item() == pytest.approx(1.0, abs=1e-12)
    assert rel[0].item() == pytest.approx(n_experts / k)  # K·T tokens where K·T/N were due


def test_relative_load_by_hand_and_empty():
    topk = torch.tensor([[0, 1], [0, 2], [0, 1]])  # T=3, K=2, N=4: balanced share 1.5
    assert relative_load(topk, 4).tolist() == pytest.approx([2.0, 4 / 3, 2 / 3, 0.0])
    with pytest.raises(MoeError):
        relative_load(torch.zeros(0, 2, dtype=torch.long), 4)


def test_configs_differ_only_in_balancing():
    a, f = lm_config("aux_loss", alpha=0.02, gamma=0.05), lm_config("aux_free", alpha=0.02, gamma=0.05)
    ra, rf = a.router, f.router
    assert (ra.balancing, ra.aux_loss_alpha, ra.bias_update_rate) == ("aux_loss", 0.02, 0.0)
    assert (rf.balancing, rf.aux_loss_alpha, rf.bias_update_rate) == ("aux_free", 0.0, 0.05)
    assert ra.scoring == rf.scoring == "sigmoid" and a.causal and ra.aux_loss_scope == "sequence"
    balancing = ("balancing", "aux_loss_alpha", "bias_update_rate")
    assert {k: v for k, v in vars(ra).items() if k not in balancing} == {k: v for k, v in vars(rf).items() if k not in balancing}
    assert {k: v for k, v in vars(a).items() if k != "router"} == {k: v for k, v in vars(f).items() if k != "router"}
    with pytest.raises(MoeError, match="method"):
        lm_config("none")


def test_bias_update_moves_skewed_router_toward_balance():
    config = lm_config("aux_free", gamma=0.01)
    router = router_from(config, 4, make_generator(3))
    with torch.no_grad():
        router.gate.weight[:, 0] = torch.linspace(2.0, -2.0, config.router.n_experts)  # feature 0 is 1 below: a skew
    x = torch.randn(4, 64, 4, generator=make_generator(4))
    x[..., 0] = 1.0
    first = relative_load(router(x).topk_idx, config.router.n_experts)
    for _ in range(200):
        router.update_bias(router(x).load)
    last = relative_load(router(x).topk_idx, config.router.n_experts)
    assert first.max() > 2.0  # strongly skewed at the start
    assert last.max() < 0.5 * first.max()
    assert (last - 1).abs().max() < (first - 1).abs().max()
    assert router.expert_bias[0] < 0 < router.expert_bias[-1]  # the favoured expert is pushed down


def test_bias_changes_selection_not_gate_weights_in_the_model():
    model = TransformerModel(lm_config("aux_free", n_layers=2), input="tokens", head="lm", seed=0).eval()
    x = torch.randint(0, 256, (2, 16), generator=make_generator(1))
    model(x)
    plain = model.moe_layers[0].last_routing
    model.moe_layers[0].router.expert_bias[3] = 10.0  # expert 3 now always selected in layer 0
    model(x)
    biased = model.moe_layers[0].last_routing
    torch.testing.assert_close(plain.scores, biased.scores)  # layer 0's input is unchanged
    assert (biased.topk_idx == 3).any(-1).all() and not (plain.topk_idx == 3).any(-1).all()
    chosen = biased.scores.gather(-1, biased.topk_idx)
    torch.testing.assert_close(biased.topk_weight, chosen / chosen.sum(-1, keepdim=True))  # unbiased s
    assert relative_load(biased.topk_idx, 8)[3] == pytest.approx(8 / 2)


def test_sequence_wise_balance_loss_matches_hand_computation():
    config = lm_config("aux_loss", n_experts=2, top_k=1, alpha=0.1)
    router = router_from(config, 2, None)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(2))
    scores = torch.tensor([[[0.6, 0.2], [0.5, 0.3]], [[0.1, 0.3], [0.2, 0.6]]])  # [seq=2, tokens=2, experts=2]
    routing = router(torch.log(scores / (1 - scores)))  # sigmoid gives back the scores
    # seq 0: both tokens pick expert 0: f = (2, 0), P_0 = mean(.6/.8, .5/.8) = .6875 -> 1.375
    # seq 1: both pick expert 1: f = (0, 2), P_1 = mean(.3/.4, .6/.8) = .75 -> 1.5; mean 1.4375, times alpha
    assert routing.topk_idx.flatten().tolist() == [0, 0, 1, 1]
    assert routing.aux_loss.item() == pytest.approx(0.1 * 1.4375, rel=1e-5)
    free = router_from(lm_config("aux_free", n_experts=2, top_k=1), 2, None)
    assert free(torch.zeros(1, 3, 2)).aux_loss.item() == 0.0


def test_domain_specialisation_on_hand_made_loads():
    uniform = np.ones((3, 2, 4))
    assert domain_specialisation(uniform) == 0.0
    same = np.tile(np.array([[[2.0, 0.0, 1.0, 1.0]]]), (3, 2, 1))  # imbalanced but identical across domains
    assert domain_specialisation(same) == 0.0
    split = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])  # two domains, one layer, each owns one expert
    assert domain_specialisation(split) == pytest.approx(1.0)  # std of (2, 0) is 1 for both experts
    mixed = np.array([[[2.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [1.0, 1.0]]])  # layer 0 split, layer 1 uniform
    assert domain_specialisation(mixed) == pytest.approx(0.5)
    with pytest.raises(MoeError):
        domain_specialisation(np.ones((1, 2, 4)))


def test_specialisation_table_and_global_maxvio_from_long_table():
    rows = []
    for method, rel in {"a": [[2.0, 0.0], [0.0, 2.0]], "b": [[1.0, 1.0], [1.0, 1.0]]}.items():
        for d, domain in enumerate(["x", "y"]):
            for e in range(2):
                rows.append({"method": method, "domain": domain, "layer": 0, "expert": e,
                             "relative_load": rel[d][e], "tokens_routed": int(rel[d][e] * 10)})
    load = pd.DataFrame(rows)
    spec = specialisation_table(load).set_index("method")
    assert spec.loc["a", "specialisation_all_layers"] == pytest.approx(1.0)
    assert spec.loc["b", "specialisation_all_layers"] == 0.0
    mv = global_maxvio(load).set_index("method")["maxvio"]
    assert mv["a"] == 0.0 and mv["b"] == 0.0  # summed over domains both are balanced


def test_mixed_batch_and_held_out_routing_shapes():
    g = make_generator(0)
    streams = {"a": torch.randint(0, 256, (500,), dtype=torch.uint8), "b": torch.randint(0, 256, (300,), dtype=torch.uint8)}
    x, y, ids = mixed_domain_batch(streams, 3, 16, g)
    assert x.shape == y.shape == (6, 16) and ids.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(x[:, 1:], y[:, :-1])
    model = TransformerModel(lm_config("aux_free", n_layers=2, seq_len=16), input="tokens", head="lm", seed=0)
    load, loss = held_out_routing(model, streams, batch_size=4, progress=False)
    assert len(load) == 2 * 2 * 8 and set(loss["domain"]) == {"a", "b"}
    assert np.allclose(load.groupby(["domain", "layer"])["relative_load"].mean(), 1.0)
    n_tokens = load.groupby(["domain", "layer"])["tokens_routed"].sum() / 2  # K = 2
    assert n_tokens.loc["a"].tolist() == [(499 // 16) * 16] * 2
    history = pd.DataFrame({"step": [0, 1], "maxvio_0": [1.0, 0.5], "maxvio_1": [2.0, 0.25]})
    long = training_maxvio({"m": history})
    assert len(long) == 4 and long["maxvio"].sum() == pytest.approx(3.75)
    assert max_violation(torch.tensor([3.0, 1.0])) == pytest.approx(0.5)
