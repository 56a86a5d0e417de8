"""MoE layer: sort-based dispatch equals the per-token reference (values and gradients), Mixtral weight layouts."""

from __future__ import annotations

import pytest
import torch
from configs import make_moe  # tests/configs.py
from torch.nn import functional as F

from moe_utils.errors import MoeError
from moe_utils.measures.hooks import record
from moe_utils.moe.layer import DenseFeedForward, MoEFeedForward, grouped_mm_supported, moe_reference_forward


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CASES = {
    "plain": dict(n_experts=4, top_k=2, shape=(2, 5)),
    "top_k_equals_n_experts": dict(n_experts=3, top_k=3, shape=(2, 3)),
    "one_token": dict(n_experts=4, top_k=2, shape=(1, 1)),
    "shared_sigmoid_unnormalised": dict(
        n_experts=4, top_k=2, shape=(2, 4), scoring="sigmoid", normalize_topk=False, n_shared_experts=2
    ),
    "idle_expert": dict(n_experts=5, top_k=2, shape=(2, 6), balancing="aux_free"),
}


def grads(layer: MoEFeedForward, x: torch.Tensor, out: torch.Tensor, probe: torch.Tensor) -> list[torch.Tensor]:
    params = [x] + list(layer.parameters())
    got = torch.autograd.grad((out * probe).sum(), params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, got)]


GROUPED_MM_ON_CPU = grouped_mm_supported(torch.zeros(1, 8), torch.zeros(2, 8, 8))


@pytest.mark.parametrize("dispatch", ["loop", "grouped_mm"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_layer_matches_reference(case, dispatch):
    if dispatch == "grouped_mm" and not GROUPED_MM_ON_CPU:
        pytest.skip("torch._grouped_mm has no usable CPU kernel in this torch")
    opts = dict(CASES[case])
    batch, seq = opts.pop("shape")
    d = 8 if dispatch == "grouped_mm" else 6  # grouped_mm needs 16-byte rows; the loop must handle any width
    layer = make_moe(d, 8, generator=gen(0), dispatch=dispatch, **opts)
    if case == "idle_expert":
        layer.router.expert_bias[4] = -100.0  # expert 4 never selected
    x = torch.randn(batch, seq, d, generator=gen(1)).requires_grad_()
    probe = torch.randn(batch, seq, d, generator=gen(2))
    with record([layer.router]) as seen:
        fast = layer(x)
    if case == "idle_expert":
        assert seen.output(0).load[4] == 0
    ref = moe_reference_forward(layer, x)
    torch.testing.assert_close(fast, ref)
    for g_fast, g_ref in zip(grads(layer, x, fast, probe), grads(layer, x, ref, probe)):
        torch.testing.assert_close(g_fast, g_ref)


def test_record_reads_the_router_input_and_routing_and_the_layer_stores_nothing():
    layer = make_moe(6, 8, 4, 2, generator=gen(0))
    x = torch.randn(2, 3, 6, generator=gen(1))
    with record([layer.router]) as seen:
        layer(x)
        layer(2 * x)
    assert seen.input(0) is x and len(seen.outputs[0]) == 2  # one entry per call, in call order
    again = layer.router(seen.input(0))
    assert torch.equal(again.topk_idx, seen.output(0).topk_idx)
    assert seen.output(0).scores.shape == (2, 3, 4) and seen.output(0).topk_weight.shape == (2, 3, 2)
    assert not any(name.startswith("last_") for name in vars(layer))
    layer(x)
    assert len(seen.outputs[0]) == 2  # the hooks are gone after the block


def mixtral_legacy_forward(state: dict, x: torch.Tensor, n_experts: int, top_k: int) -> torch.Tensor:
    """Hugging Face MixtralSparseMoeBlock's computation, written against its state-dict keys."""
    flat = x.reshape(-1, x.shape[-1])
    probs = F.linear(flat, state["gate.weight"]).softmax(-1)
    weights, chosen = probs.topk(top_k, dim=-1)
    weights = weights / weights.sum(-1, keepdim=True)
    out = torch.zeros_like(flat)
    for e in range(n_experts):
        token, slot = torch.where(chosen == e)
        h = flat[token]
        y = F.linear(
            F.silu(F.linear(h, state[f"experts.{e}.w1.weight"])) * F.linear(h, state[f"experts.{e}.w3.weight"]),
            state[f"experts.{e}.w2.weight"],
        )
        out.index_add_(0, token, y * weights[token, slot, None])
    return out.view_as(x)


def test_mixtral_weight_layouts():
    layer = make_moe(6, 8, 4, 2, generator=gen(0))
    x = torch.randn(2, 5, 6, generator=gen(1))
    with torch.no_grad():
        expected = layer(x)
        legacy = layer.to_mixtral_state_dict("legacy")
        assert legacy["experts.0.w1.weight"].shape == (8, 6)  # nn.Linear [out, in]
        torch.testing.assert_close(mixtral_legacy_forward(legacy, x, 4, 2), expected)
        stacked = layer.to_mixtral_state_dict("stacked")
        assert stacked["experts.gate_up_proj"].shape == (4, 16, 6)
        assert stacked["experts.down_proj"].shape == (4, 6, 8)
        for state in (legacy, stacked):
            copy = make_moe(6, 8, 4, 2, generator=gen(9))
            copy.load_mixtral_state_dict(state)
            assert torch.equal(copy(x), expected)
    with pytest.raises(MoeError, match="layout"):
        layer.to_mixtral_state_dict("fused")


def test_dense_feed_forward_is_swiglu():
    ffn = DenseFeedForward(6, 10, generator=gen(0))
    x = torch.randn(3, 6, generator=gen(1))
    manual = (F.silu(x @ ffn.w1.weight.T) * (x @ ffn.w3.weight.T)) @ ffn.w2.weight.T
    torch.testing.assert_close(ffn(x), manual)


def test_same_generator_same_weights():
    a, b = make_moe(6, 8, 4, 2, generator=gen(3)), make_moe(6, 8, 4, 2, generator=gen(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"d_expert": 0}, "d_expert"),
        ({"n_experts": 0}, "n_experts"),
        ({"top_k": 9}, "top_k"),
        ({"n_shared_experts": -1}, "n_shared_experts"),
        ({"balancing": "switch"}, "balancing"),
        ({"dispatch": "triton"}, "dispatch"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs, name):
    args = {"d_model": 4, "d_expert": 4, "n_experts": 4, "top_k": 2} | kwargs
    with pytest.raises(MoeError, match=name):
        make_moe(**args)
    with pytest.raises(MoeError, match="d_hidden"):
        DenseFeedForward(4, 0)


def test_grouped_mm_dispatch_needs_16_byte_rows():
    x = torch.randn(1, 3, 6, generator=gen(1))  # 24-byte float32 rows: auto falls back to the loop
    auto = make_moe(6, 8, 4, 2, generator=gen(0))
    torch.testing.assert_close(auto(x), moe_reference_forward(auto, x))
    with pytest.raises(MoeError, match="dispatch='grouped_mm'"):
        make_moe(6, 8, 4, 2, generator=gen(0), dispatch="grouped_mm")(x)
