"""SwiGLU feed-forward layers: a dense one and a sparse Mixture-of-Experts one with sort-based dispatch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MoeError, check_choice, check_nonnegative, check_positive
from .router import Router, RouterConfig, Routing, expert_counts

MIXTRAL_LAYOUTS = ("legacy", "stacked")
# How MoEFeedForward runs its experts; "auto": torch._grouped_mm where supported, else the per-expert loop.
DISPATCHES = ("auto", "loop", "grouped_mm")


def uniform_fan_in_(weight: torch.Tensor, fan_in: int, generator: torch.Generator | None) -> torch.Tensor:
    """Fill ``weight`` from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.Linear's default) using ``generator``."""
    bound = fan_in**-0.5
    return nn.init.uniform_(weight, -bound, bound, generator=generator)


def swiglu(x: torch.Tensor, w1: torch.Tensor, w3: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Mixtral expert w2(silu(w1 x) * w3 x) with weights stored [in, out]. x: [n, d] -> [n, d]."""
    return (F.silu(x @ w1) * (x @ w3)) @ w2


def grouped_mm_supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether torch._grouped_mm can compute x[rows of e] @ weight[e] here, else the caller loops over experts.

    Both: row strides of x and weight multiples of 16 bytes. CPU: float32/bfloat16, torch >= 2.9 (no CPU kernel
    before), 16-byte aligned data (required up to 2.10). CUDA: bfloat16 on compute capability >= 8.0.
    """
    if not hasattr(torch, "_grouped_mm") or x.dtype != weight.dtype or x.device != weight.device:
        return False
    if any(size * x.element_size() % 16 for size in (x.shape[-1], *weight.shape[1:])):
        return False
    if x.device.type == "cpu":
        aligned = x.data_ptr() % 16 == 0 and weight.data_ptr() % 16 == 0
        return x.dtype in (torch.float32, torch.bfloat16) and torch.__version__ >= "2.9" and aligned
    if x.device.type == "cuda":
        return x.dtype == torch.bfloat16 and torch.cuda.get_device_capability(x.device) >= (8, 0)
    return False


class DenseFeedForward(nn.Module):
    """Dense SwiGLU feed-forward w2(silu(w1 x) * w3 x), the same form as one Mixtral expert."""

    def __init__(self, d_model: int, d_hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        check_positive("d_model", d_model)
        check_positive("d_hidden", d_hidden)
        self.w1 = nn.Linear(d_model, d_hidden, bias=False)
        self.w3 = nn.Linear(d_model, d_hidden, bias=False)
        self.w2 = nn.Linear(d_hidden, d_model, bias=False)
        for layer in (self.w1, self.w3, self.w2):
            uniform_fan_in_(layer.weight, layer.in_features, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: [..., d_model] -> [..., d_model]; ``generator`` is accepted for a uniform FFN interface and unused."""
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoEFeedForward(nn.Module):
    """Sparse MoE of SwiGLU experts (stacked weights) plus optional always-on shared experts (DeepSeek)."""

    def __init__(
        self,
        d_model: int,
        d_expert: int,
        router: RouterConfig,
        n_shared_experts: int = 0,
        generator: torch.Generator | None = None,
        dispatch: str = "auto",
    ):
        super().__init__()
        check_positive("d_expert", d_expert)
        check_nonnegative("n_shared_experts", n_shared_experts, integer=True)
        self.router = Router(d_model, router, generator=generator)
        n_experts = router.n_experts
        self.d_model, self.d_expert, self.n_experts, self.top_k = d_model, d_expert, n_experts, router.top_k
        self.w1 = nn.Parameter(torch.empty(n_experts, d_model, d_expert))  # [experts, d_model, d_expert] gate proj
        self.w3 = nn.Parameter(torch.empty(n_experts, d_model, d_expert))  # [experts, d_model, d_expert] up proj
        self.w2 = nn.Parameter(torch.empty(n_experts, d_expert, d_model))  # [experts, d_expert, d_model] down proj
        uniform_fan_in_(self.w1, d_model, generator)
        uniform_fan_in_(self.w3, d_model, generator)
        uniform_fan_in_(self.w2, d_expert, generator)
        # n shared SwiGLU experts summed == one SwiGLU with n * d_expert hidden units.
        self.shared = DenseFeedForward(d_model, n_shared_experts * d_expert, generator) if n_shared_experts else None
        self.n_shared_experts = n_shared_experts
        self.dispatch = check_choice("dispatch", dispatch, DISPATCHES)

    def extra_repr(self) -> str:
        """Sizes shown by print(layer)."""
        return f"d_model={self.d_model}, d_expert={self.d_expert}, n_experts={self.n_experts}, top_k={self.top_k}"

    def experts_forward(self, x: torch.Tensor, routing: Routing) -> torch.Tensor:
        """Weighted sum of the selected experts' outputs, one contiguous slice per expert. x: [batch, seq, d]."""
        n_tokens = x.shape[0] * x.shape[1]
        x_flat = x.reshape(n_tokens, self.d_model)  # [tokens, d]
        expert_of = routing.topk_idx.reshape(-1)  # [tokens*k]
        order = expert_of.argsort(stable=True)  # [tokens*k] assignments grouped by expert
        token_of = order // self.top_k  # [tokens*k] source token of each sorted assignment
        counts = expert_counts(expert_of, self.n_experts)  # [experts] assignments per expert
        x_sorted = x_flat.index_select(0, token_of)  # [tokens*k, d]; backward is index_add_, not index_put_
        if self.use_grouped_mm(x_sorted):
            y_sorted = self.grouped_experts(x_sorted, counts)
        else:
            y_sorted = self.looped_experts(x_sorted, counts.tolist())  # one host sync
        gate = routing.topk_weight.reshape(-1)[order].unsqueeze(-1)  # [tokens*k, 1]
        y_sorted = (y_sorted * gate.to(y_sorted.dtype)).to(x.dtype)
        out = x_flat.new_zeros(n_tokens, self.d_model).index_add_(0, token_of, y_sorted)  # [tokens, d]
        return out.view_as(x)

    def use_grouped_mm(self, x_sorted: torch.Tensor) -> bool:
        """Whether experts_forward runs torch._grouped_mm (per ``self.dispatch``) instead of the per-expert loop."""
        if self.dispatch == "loop":
            return False
        supported = all(grouped_mm_supported(x_sorted, w) for w in (self.w1, self.w3, self.w2))
        if self.dispatch == "grouped_mm" and not supported:
            raise MoeError(
                f"dispatch='grouped_mm' is not available for {x_sorted.dtype} on {x_sorted.device}; use 'auto' or 'loop'"
            )
        return supported

    def looped_experts(self, x_sorted: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """SwiGLU of each expert on its slice of the expert-sorted rows. x_sorted: [tokens*k, d] -> [tokens*k, d]."""
        # unbind once: indexing self.w1[e] per expert makes each slice's backward build a full [E, ...] zero gradient.
        w1, w3, w2 = self.w1.unbind(0), self.w3.unbind(0), self.w2.unbind(0)
        outputs, start = [], 0
        for e, n in enumerate(counts):
            if n:
                outputs.append(swiglu(x_sorted[start : start + n], w1[e], w3[e], w2[e]))
            start += n
        return torch.cat(outputs) if outputs else x_sorted.new_zeros(0, self.d_model)

    def grouped_experts(self, x_sorted: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The same SwiGLUs as looped_experts as three torch._grouped_mm calls, with no host sync."""
        offs = counts.cumsum(0).to(torch.int32)  # [experts] end row of each expert's slice
        gate = torch._grouped_mm(x_sorted, self.w1, offs=offs)  # [tokens*k, d_expert]
        up = torch._grouped_mm(x_sorted, self.w3, offs=offs)  # [tokens*k, d_expert]
        return torch._grouped_mm(F.silu(gate) * up, self.w2, offs=offs)  # [tokens*k, d]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: [batch, seq, d_model] -> [batch, seq, d_model]. The router's input and routing are read with
        ``measures.hooks.record(model.routers())``; nothing is stored on the layer."""
        routing = self.router(x, generator)
        out = self.experts_forward(x, routing)
        if self.shared is not None:
            out = out + self.shared(x)
        return out

    def to_mixtral_state_dict(self, layout: str = "legacy") -> dict[str, torch.Tensor]:
        """Weights keyed for Hugging Face's MixtralSparseMoeBlock ("legacy": experts.{e}.w1.weight; "stacked": gate_up_proj)."""
        check_choice("layout", layout, MIXTRAL_LAYOUTS)
        state = {"gate.weight": self.router.gate.weight.detach().clone()}
        if layout == "stacked":  # transformers >= 5: gate_up_proj [E, 2*ffn, d], down_proj [E, d, ffn]
            state["experts.gate_up_proj"] = torch.cat([self.w1, self.w3], dim=2).transpose(1, 2).detach().clone()
            state["experts.down_proj"] = self.w2.transpose(1, 2).detach().clone()
            return state
        for e in range(self.n_experts):  # nn.Linear weights are [out, in]
            state[f"experts.{e}.w1.weight"] = self.w1[e].T.detach().clone()
            state[f"experts.{e}.w3.weight"] = self.w3[e].T.detach().clone()
            state[f"experts.{e}.w2.weight"] = self.w2[e].T.detach().clone()
        return state

    @torch.no_grad()
    def load_mixtral_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a MixtralSparseMoeBlock state dict (either layout) into this layer's router and experts."""
        self.router.gate.weight.copy_(state["gate.weight"])
        if "experts.gate_up_proj" in state:
            w1, w3 = state["experts.gate_up_proj"].transpose(1, 2).chunk(2, dim=2)
            self.w1.copy_(w1)
            self.w3.copy_(w3)
            self.w2.copy_(state["experts.down_proj"].transpose(1, 2))
            return
        if "experts.0.w1.weight" not in state:
            raise MoeError(
                "state has no 'experts.0.w1.weight' or 'experts.gate_up_proj'; it must be a Mixtral block state dict"
            )
        for e in range(self.n_experts):
            self.w1[e].copy_(state[f"experts.{e}.w1.weight"].T)
            self.w3[e].copy_(state[f"experts.{e}.w3.weight"].T)
            self.w2[e].copy_(state[f"experts.{e}.w2.weight"].T)


def moe_reference_forward(layer: MoEFeedForward, x: torch.Tensor, routing: Routing | None = None) -> torch.Tensor:
    """Slow per-token, per-slot loop computing the same output as ``layer(x)`` (tests only). x: [batch, seq, d]."""
    if routing is None:
        routing = layer.router(x)
    rows = []
    for b in range(x.shape[0]):
        for s in range(x.shape[1]):
            token = x[b, s : s + 1]  # [1, d]
            y = torch.zeros_like(token)
            for slot in range(layer.top_k):
                e = int(routing.topk_idx[b, s, slot])
                y = y + routing.topk_weight[b, s, slot] * swiglu(token, layer.w1[e], layer.w3[e], layer.w2[e])
            if layer.shared is not None:
                y = y + layer.shared(token)
            rows.append(y)
    return torch.cat(rows).view_as(x)
