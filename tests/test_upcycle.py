"""Sparse upcycling of a dense Llama model into a GLM-4-MoE checkpoint: the copy method reproduces the dense model,
the checkpoint reloads with from_pretrained and no custom code, and partial re-initialisation moves the experts."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from configs import TINY_LLAMA  # noqa: E402

from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.hf.upcycle import parameter_counts, upcycle  # noqa: E402

SMALL = TINY_LLAMA


def dense_llama(seed: int = 0):
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL)).eval()


def tokens():
    return torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))


def test_the_copy_method_reproduces_the_dense_model_and_reloads_with_from_pretrained(tmp_path):
    dense = dense_llama()
    moe = upcycle(dense, n_experts=4, top_k=2, moe_layers=2)
    x = tokens()
    with torch.no_grad():
        want, got = dense(x).logits, moe(x).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)  # Σ_k w_k FFN(x) = FFN(x), attention is Llama's
    assert type(moe.model.layers[1].mlp).__name__ == "Glm4MoeMLP"  # the lower layers stay dense
    assert type(moe.model.layers[2].mlp).__name__ == "Glm4MoeMoE"
    moe.save_pretrained(tmp_path / "moe")
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "moe").eval()
    assert type(again).__name__ == "Glm4MoeForCausalLM"
    with torch.no_grad():
        torch.testing.assert_close(again(x).logits, got, atol=1e-6, rtol=1e-6)
    counts = parameter_counts(moe)
    per_expert = 3 * 32 * 48
    assert counts["total"] - counts["active"] == 2 * (4 - 2) * per_expert


def test_partial_reinitialisation_moves_the_experts_apart():
    dense = dense_llama()
    moe = upcycle(dense, n_experts=4, top_k=2, moe_layers=1, reinit_share=0.5, seed=3)
    experts = moe.model.layers[3].mlp.experts
    assert not torch.equal(experts.gate_up_proj[0], experts.gate_up_proj[1])
    shared = (experts.gate_up_proj[0] == experts.gate_up_proj[1]).all(-1).float().mean()  # rows still the dense ones
    assert 0.2 < float(shared) < 0.8
    with torch.no_grad():
        assert not torch.allclose(moe(tokens()).logits, dense(tokens()).logits, atol=1e-4)


def test_bad_shapes_are_one_line():
    with pytest.raises(MoeError, match="top_k=5 is not allowed; it must be at most n_experts=4"):
        upcycle(dense_llama(), n_experts=4, top_k=5)
    with pytest.raises(MoeError, match="moe_layers=9 is not allowed; it must be between 1 and 4"):
        upcycle(dense_llama(), n_experts=4, top_k=2, moe_layers=9)


def test_real_smollm2_upcycled_in_its_top_six_layers_keeps_its_logits():
    from test_real_models import real_smollm2_or_skip

    folder = real_smollm2_or_skip()
    dense = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    moe = upcycle(dense, n_experts=8, top_k=2, moe_layers=6)
    x = torch.randint(0, dense.config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = dense(x).logits, moe(x).logits
    assert (got - want).abs().max() < 1e-3 * want.abs().max()  # float rounding of Σ_k w_k FFN(x) only
    counts = parameter_counts(moe)
    assert counts["active"] - sum(p.numel() for p in dense.parameters()) < 0.2 * counts["active"]
