"""Top-k expert router: softmax/sigmoid scoring, noisy top-k gating, aux-loss and aux-loss-free balancing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MoeError, check_bool, check_choice, check_nonnegative, check_positive
from ..measures.routing import expert_counts

SCORINGS = ("softmax", "sigmoid")
NOISES = ("none", "noisy_topk")
BALANCINGS = ("none", "aux_loss", "aux_free")
AUX_LOSS_SCOPES = ("sequence", "batch")


@dataclass(frozen=True)
class RouterConfig:
    """Every routing setting, validated once here and passed whole: TransformerConfig -> MoEFeedForward -> Router."""

    n_experts: int = 8  # routed experts
    top_k: int = 2  # experts chosen per token
    scoring: str = "softmax"  # "softmax" (Mixtral) | "sigmoid" (DeepSeek-V3 affinities)
    normalize_topk: bool = True  # renormalise the k chosen gate weights to sum to 1
    noise: str = "none"  # "none" | "noisy_topk" (Shazeer et al. 2017, training mode only)
    balancing: str = "none"  # "none" | "aux_loss" (sequence-wise balance loss) | "aux_free" (DeepSeek-V3 bias)
    aux_loss_alpha: float = 0.01  # weight of the balance loss (balancing="aux_loss")
    aux_loss_scope: str = "sequence"  # "sequence" | "batch": what one balance-loss term averages over
    bias_update_rate: float = 1e-3  # gamma of the aux-free bias update (balancing="aux_free")

    def __post_init__(self):
        check_positive("n_experts", self.n_experts)
        check_positive("top_k", self.top_k)
        if self.top_k > self.n_experts:
            raise MoeError(f"top_k={self.top_k!r} is not allowed; it must be at most n_experts={self.n_experts}")
        check_choice("scoring", self.scoring, SCORINGS)
        check_bool("normalize_topk", self.normalize_topk)
        check_choice("noise", self.noise, NOISES)
        check_choice("balancing", self.balancing, BALANCINGS)
        check_nonnegative("aux_loss_alpha", self.aux_loss_alpha)
        check_choice("aux_loss_scope", self.aux_loss_scope, AUX_LOSS_SCOPES)
        check_nonnegative("bias_update_rate", self.bias_update_rate)


@dataclass
class Routing:
    """What a router decided for a batch [batch, seq] of tokens."""

    scores: torch.Tensor  # [batch, seq, experts] affinities s_{t,i} (after noise, before expert_bias)
    topk_idx: torch.Tensor  # [batch, seq, k] selected experts, best first
    topk_weight: torch.Tensor  # [batch, seq, k] gate weights from the unbiased scores
    aux_loss: torch.Tensor  # [] balance loss (alpha already applied); 0 when unused
    load: torch.Tensor  # [experts] float count of (token, slot) assignments per expert


def sequence_aux_loss(
    scores: torch.Tensor, topk_idx: torch.Tensor, alpha: float, scope: str = "sequence"
) -> torch.Tensor:
    """DeepSeek-V3 balance loss alpha * sum_i f_i P_i, averaged over sequences ("batch": whole batch as one sequence).

    f_i = E / (K T) * #{t : i in TopK(t)} and P_i = mean_t s_{i,t} / sum_j s_{j,t}, over the T tokens of a sequence.
    scores: [batch, seq, experts]; topk_idx: [batch, seq, k].
    """
    check_choice("aux_loss_scope", scope, AUX_LOSS_SCOPES)
    n_experts, k = scores.shape[-1], topk_idx.shape[-1]
    if scope == "batch":
        scores, topk_idx = scores.reshape(1, -1, n_experts), topk_idx.reshape(1, -1, k)
    n_tokens = scores.shape[1]
    counts = torch.zeros(scores.shape[0], n_experts, device=scores.device, dtype=scores.dtype)  # [batch, experts]
    counts.scatter_add_(
        1,
        topk_idx.reshape(scores.shape[0], -1),
        torch.ones_like(topk_idx.reshape(scores.shape[0], -1), dtype=scores.dtype),
    )
    f = counts * (n_experts / (k * n_tokens))  # [batch, experts]
    normed = scores / scores.sum(-1, keepdim=True)  # [batch, seq, experts]
    p = normed.mean(1)  # [batch, experts]
    return alpha * (f * p).sum(-1).mean()


class Router(nn.Module):
    """Linear token-to-expert scoring u·e_i with top-k selection (Mixtral / DeepSeek-V3 / Shazeer et al. 2017 variants)."""

    def __init__(self, d_model: int, config: RouterConfig, generator: torch.Generator | None = None):
        super().__init__()
        check_positive("d_model", d_model)
        if not isinstance(config, RouterConfig):
            raise MoeError(f"config={config!r} is not allowed; it must be a RouterConfig")
        self.config, self.d_model = config, d_model  # the config is read, never copied into attributes
        n_experts, noise = config.n_experts, config.noise
        self.gate = nn.Linear(d_model, n_experts, bias=False)  # weight [experts, d_model], as Mixtral's gate
        bound = d_model**-0.5
        nn.init.uniform_(self.gate.weight, -bound, bound, generator=generator)
        # Shazeer et al. 2017 noise scale; zero init gives std softplus(0) ~ 0.69 at the start.
        self.w_noise = nn.Linear(d_model, n_experts, bias=False) if noise == "noisy_topk" else None
        if self.w_noise is not None:
            nn.init.zeros_(self.w_noise.weight)
        self.register_buffer("expert_bias", torch.zeros(n_experts))  # [experts] selection-only bias (aux_free)
        self.noise_generator: torch.Generator | None = None

    @property
    def n_experts(self) -> int:
        """Routed experts (``config.n_experts``)."""
        return self.config.n_experts

    @property
    def top_k(self) -> int:
        """Experts chosen per token (``config.top_k``)."""
        return self.config.top_k

    def extra_repr(self) -> str:
        """Settings shown by print(router)."""
        c = self.config
        return (
            f"d_model={self.d_model}, n_experts={c.n_experts}, top_k={c.top_k}, scoring={c.scoring!r}, "
            f"normalize_topk={c.normalize_topk}, noise={c.noise!r}, balancing={c.balancing!r}"
        )

    def logits(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Router logits, with Shazeer noise N(0,1)·softplus(x W_noise) added in training mode. -> [..., experts]."""
        logits = self.gate(x)  # [batch, seq, experts]
        if self.config.noise == "noisy_topk" and self.training:
            generator = generator if generator is not None else self.noise_generator
            if generator is None:
                raise MoeError(
                    "generator=None is not allowed; noise='noisy_topk' in training mode needs a torch.Generator"
                )
            eps = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
            logits = logits + eps * F.softplus(self.w_noise(x))
        return logits

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Routing:
        """Route tokens x [batch, seq, d_model]; ``generator`` (or ``self.noise_generator``) drives noisy gating."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise MoeError(f"x.shape={tuple(x.shape)} is not allowed; it must be [batch, seq, {self.d_model}]")
        logits = self.logits(x, generator)  # [batch, seq, experts]
        c = self.config
        logits = logits.float()  # scores in float32 even under autocast, as Hugging Face's Mixtral does
        scores = logits.softmax(-1) if c.scoring == "softmax" else logits.sigmoid()  # [batch, seq, experts]
        select = scores + self.expert_bias if c.balancing == "aux_free" else scores
        topk_idx = select.detach().topk(c.top_k, dim=-1).indices  # [batch, seq, k]
        topk_weight = scores.gather(-1, topk_idx)  # [batch, seq, k]
        if c.normalize_topk:
            topk_weight = topk_weight / topk_weight.sum(-1, keepdim=True)
        if c.balancing == "aux_loss" and c.aux_loss_alpha > 0:
            aux = sequence_aux_loss(scores, topk_idx, c.aux_loss_alpha, c.aux_loss_scope)
        else:
            aux = scores.new_zeros(())
        return Routing(scores, topk_idx, topk_weight, aux, expert_counts(topk_idx, c.n_experts).float())

    @torch.no_grad()
    def update_bias(self, load_counts: torch.Tensor) -> None:
        """DeepSeek-V3 aux-free step: b_i += gamma * sign(mean load - load_i). load_counts: [experts]."""
        if self.config.balancing != "aux_free":
            raise MoeError(f"balancing={self.config.balancing!r} is not allowed for update_bias; it needs 'aux_free'")
        load = torch.as_tensor(load_counts, device=self.expert_bias.device).float().reshape(-1)
        if load.numel() != self.n_experts:
            raise MoeError(f"load_counts has {load.numel()} entries; it must have n_experts={self.n_experts}")
        self.expert_bias += self.config.bias_update_rate * torch.sign(load.mean() - load)
