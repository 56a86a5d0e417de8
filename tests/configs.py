"""Test shorthands: flat keyword arguments split into a RouterConfig and the rest (tests only; the package takes configs)."""

from __future__ import annotations

from dataclasses import fields

import torch

from moe_utils.moe.layer import MoEFeedForward
from moe_utils.moe.router import Router, RouterConfig
from moe_utils.moe.transformer import TransformerConfig

ROUTER_FIELDS = {f.name for f in fields(RouterConfig)}


def split_router(kwargs: dict) -> tuple[RouterConfig, dict]:
    """(RouterConfig of the routing keywords, the remaining keywords)."""
    routing = {k: v for k, v in kwargs.items() if k in ROUTER_FIELDS}
    return RouterConfig(**routing), {k: v for k, v in kwargs.items() if k not in ROUTER_FIELDS}


def make_router(
    d_model: int, n_experts: int, top_k: int, generator: torch.Generator | None = None, **settings
) -> Router:
    """Router(d_model, RouterConfig(n_experts, top_k, **settings), generator)."""
    return Router(d_model, RouterConfig(n_experts=n_experts, top_k=top_k, **settings), generator)


def make_moe(d_model: int, d_expert: int, n_experts: int = 4, top_k: int = 2, **kwargs) -> MoEFeedForward:
    """MoEFeedForward with routing keywords gathered into its RouterConfig."""
    router, rest = split_router({"n_experts": n_experts, "top_k": top_k, **kwargs})
    return MoEFeedForward(d_model, d_expert, router, **rest)


def make_config(**kwargs) -> TransformerConfig:
    """TransformerConfig with routing keywords gathered into its RouterConfig."""
    router, rest = split_router(kwargs)
    return TransformerConfig(router=router, **rest)


TINY_LLAMA = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=True,
)  # a dense Llama small enough to upcycle and train in a test (tests/test_upcycle.py, tests/test_upcycled_moe.py)
