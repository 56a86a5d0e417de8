"""Sparse upcycling: a dense Llama-family causal LM -> a DeepSeek-V3-style MoE LM that transformers implements
(``Glm4MoeForCausalLM``: sigmoid affinities, ``e_score_correction_bias``, shared experts, dense lower layers).

Method (Komatsuzaki et al. 2022, arXiv:2212.05055; Drop-Upcycling, arXiv:2502.19261): in the top ``moe_layers``
layers every routed expert starts as a copy of the layer's dense SwiGLU feed-forward; with ``reinit_share`` > 0 that
share of each expert's intermediate neurons is re-initialised (Drop-Upcycling's partial re-initialisation: the
neurons' rows of gate and up and columns of down drawn from a normal with the dense weights' std), so experts can
diverge. The router starts at N(0, ``router_std``²), the correction bias at 0, there is no shared expert and top-k
weights are normalised to sum to 1 — so with ``reinit_share`` = 0 the upcycled model computes exactly the dense
model's function (Σ_k w_k · FFN(x) = FFN(x)), checked by a test to float tolerance. Attention, norms, embeddings
and the LM head are copied; ``use_qk_norm=False``, ``attention_bias`` as the dense model and a full rotary factor
make GLM-4-MoE's attention Llama's.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import MoeError, check_positive, check_range


def upcycled_config(dense_config, n_experts: int, top_k: int, moe_layers: int):
    """The ``Glm4MoeConfig`` of ``dense_config`` (a Llama-family config) with MoE feed-forwards in its top
    ``moe_layers`` layers: ``n_experts`` routed experts of the dense FFN's width, top-``top_k``, no shared expert."""
    from transformers import Glm4MoeConfig

    check_positive("n_experts", n_experts)
    check_positive("top_k", top_k)
    if top_k > n_experts:
        raise MoeError(f"top_k={top_k} is not allowed; it must be at most n_experts={n_experts}")
    n_layers = dense_config.num_hidden_layers
    if not 1 <= moe_layers <= n_layers:
        raise MoeError(f"moe_layers={moe_layers!r} is not allowed; it must be between 1 and {n_layers}")
    rope = dict(getattr(dense_config, "rope_parameters", None) or {"rope_type": "default", "rope_theta": 10000.0})
    rope["partial_rotary_factor"] = 1.0  # Llama rotates the whole head
    return Glm4MoeConfig(
        vocab_size=dense_config.vocab_size,
        hidden_size=dense_config.hidden_size,
        intermediate_size=dense_config.intermediate_size,
        moe_intermediate_size=dense_config.intermediate_size,
        num_hidden_layers=n_layers,
        num_attention_heads=dense_config.num_attention_heads,
        num_key_value_heads=dense_config.num_key_value_heads,
        head_dim=getattr(dense_config, "head_dim", dense_config.hidden_size // dense_config.num_attention_heads),
        hidden_act=dense_config.hidden_act,
        max_position_embeddings=dense_config.max_position_embeddings,
        rms_norm_eps=dense_config.rms_norm_eps,
        tie_word_embeddings=dense_config.tie_word_embeddings,
        rope_parameters=rope,
        attention_bias=getattr(dense_config, "attention_bias", False),
        use_qk_norm=False,
        n_routed_experts=n_experts,
        num_experts_per_tok=top_k,
        n_shared_experts=0,
        n_group=1,
        topk_group=1,
        norm_topk_prob=True,
        routed_scaling_factor=1.0,
        first_k_dense_replace=n_layers - moe_layers,
        bos_token_id=dense_config.bos_token_id,
        eos_token_id=dense_config.eos_token_id,
        pad_token_id=getattr(dense_config, "pad_token_id", None),
    )


@torch.no_grad()
def upcycle(
    dense,
    n_experts: int = 8,
    top_k: int = 2,
    moe_layers: int = 6,
    *,
    reinit_share: float = 0.0,
    router_std: float = 0.02,
    seed: int = 0,
):
    """A ``Glm4MoeForCausalLM`` upcycled from the dense Llama-family model ``dense`` (see the module docstring)."""
    from transformers import Glm4MoeForCausalLM

    check_range("reinit_share", reinit_share, 0.0, 1.0)
    config = upcycled_config(dense.config, n_experts, top_k, moe_layers)
    with warnings.catch_warnings():  # no shared expert: its empty MLP warns that zero-element tensors need no init
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        moe = Glm4MoeForCausalLM(config).to(dense.dtype).eval()
    source = dense.state_dict()
    target = moe.state_dict()
    generator = torch.Generator().manual_seed(seed)
    copied = 0
    for name, value in target.items():
        if name in source and source[name].shape == value.shape:
            value.copy_(source[name])
            copied += 1
    for index in range(config.first_k_dense_replace, config.num_hidden_layers):
        prefix = f"model.layers.{index}.mlp."
        gate, up, down = (source[f"{prefix}{p}_proj.weight"] for p in ("gate", "up", "down"))  # [ffn, d] x2, [d, ffn]
        experts = moe.model.layers[index].mlp.experts
        for e in range(n_experts):
            g, u, dn = gate.clone(), up.clone(), down.clone()
            if reinit_share > 0:  # Drop-Upcycling: re-draw a share of this expert's intermediate neurons
                drop = torch.randperm(g.shape[0], generator=generator)[: int(round(reinit_share * g.shape[0]))]
                g[drop] = torch.randn(len(drop), g.shape[1], generator=generator, dtype=g.dtype) * gate.std()
                u[drop] = torch.randn(len(drop), u.shape[1], generator=generator, dtype=u.dtype) * up.std()
                dn[:, drop] = torch.randn(dn.shape[0], len(drop), generator=generator, dtype=dn.dtype) * down.std()
            experts.gate_up_proj[e].copy_(torch.cat([g, u], 0))  # [2·ffn, d]
            experts.down_proj[e].copy_(dn)  # [d, ffn]
        router = moe.model.layers[index].mlp.gate
        router.weight.copy_(torch.randn(router.weight.shape, generator=generator) * router_std)
        router.e_score_correction_bias.zero_()
    if config.tie_word_embeddings:
        moe.tie_weights()
    missing = [n for n in target if ".mlp." not in n and n not in source]
    if missing:
        raise MoeError(f"{type(dense).__name__} has no weights for {missing[:3]}; upcycling needs a Llama-family model")
    return moe


def parameter_counts(model) -> dict[str, int]:
    """Total parameters, and those active per token (embeddings counted once; routed experts counted top-k times)."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    per_expert = 3 * config.hidden_size * config.moe_intermediate_size
    n_moe = config.num_hidden_layers - config.first_k_dense_replace
    inactive = n_moe * (config.n_routed_experts - config.num_experts_per_tok) * per_expert
    return {"total": total, "active": total - inactive}
