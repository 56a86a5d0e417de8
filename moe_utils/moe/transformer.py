"""Pre-norm transformer (dense or MoE feed-forward) with per-head outputs exposed for head-importance studies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MoeError, check_bool, check_choice, check_nonnegative, check_positive, check_range
from ..runtime import make_generator
from .layer import DenseFeedForward, MoEFeedForward, uniform_fan_in_
from .router import RouterConfig

FFNS = ("dense", "moe")
INPUTS = ("tokens", "patches")
HEADS = ("classifier", "lm")


@dataclass
class TransformerConfig:
    """Sizes of a TransformerModel and, for MoE feed-forwards, its RouterConfig (all blocks share them)."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    ffn: str = "moe"  # "dense" | "moe"
    d_ff: int = 256  # hidden width of a dense FFN
    d_expert: int = 64  # hidden width of one MoE expert (and of one shared expert)
    n_shared_experts: int = 0
    router: RouterConfig = field(default_factory=RouterConfig)  # routed experts, top-k, scoring, noise, balancing
    causal: bool = False
    max_len: int = 256
    dropout: float = 0.0

    def __post_init__(self):
        if isinstance(self.router, dict):  # from asdict(), e.g. a saved checkpoint
            self.router = RouterConfig(**self.router)
        if not isinstance(self.router, RouterConfig):
            raise MoeError(f"router={self.router!r} is not allowed; it must be a RouterConfig")
        for name in ("d_model", "n_heads", "n_layers", "d_ff", "d_expert", "max_len"):
            check_positive(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise MoeError(f"n_heads={self.n_heads!r} is not allowed; it must divide d_model={self.d_model}")
        check_choice("ffn", self.ffn, FFNS)
        check_nonnegative("n_shared_experts", self.n_shared_experts, integer=True)
        check_bool("causal", self.causal)
        check_range("dropout", self.dropout, 0.0, 0.99)

    @property
    def d_head(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads


def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout whose mask comes from ``generator`` (required when it is active)."""
    if not training or p == 0:
        return x
    if generator is None:
        raise MoeError("generator=None is not allowed; dropout > 0 in training mode needs a torch.Generator")
    keep = torch.empty(x.shape, device=x.device, dtype=x.dtype).bernoulli_(1 - p, generator=generator)
    return x * keep / (1 - p)


def image_to_patches(images: torch.Tensor, patch: int = 4) -> torch.Tensor:
    """Cut images [N, H, W] (or [N, C, H, W]) into row-major patches -> [N, (H/p)*(W/p), (C*)p*p]; uint8 -> [0, 1]."""
    check_positive("patch", patch)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise MoeError(f"images.shape={tuple(images.shape)} is not allowed; it must be [N, H, W] or [N, C, H, W]")
    n, c, h, w = images.shape
    if h % patch or w % patch:
        raise MoeError(f"patch={patch!r} is not allowed; it must divide the image size {h}x{w}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    x = x.reshape(n, c, h // patch, patch, w // patch, patch)  # [N, C, rows, p, cols, p]
    x = x.permute(0, 2, 4, 1, 3, 5)  # [N, rows, cols, C, p, p]
    return x.reshape(n, (h // patch) * (w // patch), c * patch * patch)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention that forms each head's output [B, S, H, d_head] explicitly before the output projection."""

    def __init__(self, d_model: int, n_heads: int, causal: bool, generator: torch.Generator | None = None):
        super().__init__()
        self.n_heads, self.d_head, self.causal = n_heads, d_model // n_heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        for layer in (self.qkv, self.out):
            uniform_fan_in_(layer.weight, d_model, generator)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, S, d] -> [B, S, d]. The heads' outputs, concatenated, are the input of ``out`` (the output
        projection), where ``measures.hooks.per_head`` reads and scales them."""
        b, s, d = x.shape
        qkv = self.qkv(x).view(b, s, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # [3, B, H, S, d_head]
        heads = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=self.causal)  # [B, H, S, d_head]
        return self.out(heads.transpose(1, 2).reshape(b, s, d))  # [B, S, H·d_head] -> [B, S, d]


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attn(LN(x)), then + FFN(LN(.)), with a dense or MoE SwiGLU FFN."""

    def __init__(self, config: TransformerConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = MultiHeadSelfAttention(config.d_model, config.n_heads, config.causal, generator)
        self.norm2 = nn.LayerNorm(config.d_model)
        if config.ffn == "moe":
            self.ffn = MoEFeedForward(
                config.d_model, config.d_expert, config.router, config.n_shared_experts, generator
            )
        else:
            self.ffn = DenseFeedForward(config.d_model, config.d_ff, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: [B, S, d] -> [B, S, d]."""
        p = self.config.dropout
        x = x + dropout(self.attn(self.norm1(x)), p, self.training, generator)
        return x + dropout(self.ffn(self.norm2(x), generator), p, self.training, generator)


class TransformerModel(nn.Module):
    """Byte-token or image-patch transformer with a mean-pool classifier or a per-token LM head."""

    def __init__(
        self,
        config: TransformerConfig,
        input: str = "tokens",
        vocab_size: int = 256,
        patch_dim: int | None = None,
        head: str = "classifier",
        n_classes: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_choice("input", input, INPUTS)
        check_choice("head", head, HEADS)
        if input == "tokens":
            check_positive("vocab_size", vocab_size)
        else:
            check_positive("patch_dim", patch_dim)
        if head == "classifier":
            check_positive("n_classes", n_classes)
        elif input != "tokens":
            raise MoeError(f"head={head!r} is not allowed with input={input!r}; choose 'classifier'")
        self.config, self.input_kind, self.head_kind = config, input, head
        self.init_kwargs = {
            "config": asdict(config),
            "input": input,
            "vocab_size": vocab_size,
            "patch_dim": patch_dim,
            "head": head,
            "n_classes": n_classes,
            "seed": seed,
        }
        generator = make_generator(seed)
        d = config.d_model
        if input == "tokens":
            self.embed = nn.Embedding(vocab_size, d)
            nn.init.normal_(self.embed.weight, std=0.02, generator=generator)
        else:
            self.embed = nn.Linear(patch_dim, d)
            uniform_fan_in_(self.embed.weight, patch_dim, generator)
            nn.init.zeros_(self.embed.bias)
        self.pos = nn.Parameter(torch.empty(config.max_len, d))  # [max_len, d]
        nn.init.normal_(self.pos, std=0.02, generator=generator)
        self.blocks = nn.ModuleList(TransformerBlock(config, generator) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab_size if head == "lm" else n_classes)
        uniform_fan_in_(self.head.weight, d, generator)
        nn.init.zeros_(self.head.bias)

    def kept_record(self) -> dict:
        """What a kept result holds of the model (``io.safe_store``): its constructor's arguments and its state."""
        return {"init_kwargs": self.init_kwargs, "state": self.state_dict(), "training": self.training}

    @classmethod
    def from_kept_record(cls, record: dict) -> TransformerModel:
        """The model rebuilt from ``kept_record()``, bit-exactly."""
        kwargs = dict(record["init_kwargs"], config=TransformerConfig(**record["init_kwargs"]["config"]))
        model = cls(**kwargs)
        model.load_state_dict(record["state"])
        return model.train(record["training"])

    @property
    def moe_layers(self) -> list[MoEFeedForward]:
        """The MoE feed-forward layers, first block first (empty for a dense model)."""
        return [block.ffn for block in self.blocks if isinstance(block.ffn, MoEFeedForward)]

    def output_projections(self) -> list[nn.Linear]:
        """Each block's attention output projection, whose input is its heads' outputs (``measures.hooks.per_head``)."""
        return [block.attn.out for block in self.blocks]

    def routers(self) -> list[nn.Module]:
        """Each MoE layer's router, first block first (``measures.hooks.record`` reads their inputs and routings)."""
        return [layer.router for layer in self.moe_layers]

    def aux_loss(self, routings: list) -> torch.Tensor:
        """Sum of the routers' auxiliary losses of one forward, from its ``routings`` (one ``Routing`` per MoE layer,
        as ``measures.hooks.record(self.routers())`` gives them; 0 when none)."""
        losses = [r.aux_loss for r in routings]
        return torch.stack(losses).sum() if losses else self.pos.new_zeros(())

    def update_router_biases(self, routings: list) -> None:
        """Apply DeepSeek-V3's bias update to every aux-free router, using the load of one forward's ``routings``."""
        for layer, routing in zip(self.moe_layers, routings):
            if layer.router.config.balancing == "aux_free":
                layer.router.update_bias(routing.load)

    def features(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Final-norm hidden states [B, S, d] of tokens [B, S] or patches [B, S, patch_dim]."""
        seq = x.shape[1]
        if seq > self.config.max_len:
            raise MoeError(f"sequence length {seq} is not allowed; it must be at most max_len={self.config.max_len}")
        h = self.embed(x) + self.pos[:seq]  # [B, S, d]
        h = dropout(h, self.config.dropout, self.training, generator)
        for block in self.blocks:
            h = block(h, generator)
        return self.norm(h)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits: [B, n_classes] (classifier) or [B, S, vocab] (lm)."""
        h = self.features(x, generator)  # [B, S, d]
        return self.head(h.mean(1) if self.head_kind == "classifier" else h)
