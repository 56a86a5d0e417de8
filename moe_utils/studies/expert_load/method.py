"""Expert load by domain (DeepSeek-V3 App. C): training two byte-level MoE LMs and measuring their routing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ...datasets.corpora import BYTE_VOCAB_SIZE, sample_lm_batch
from ...errors import MoeError, check_choice
from ...measures import hooks
from ...measures.routing import expert_counts, max_violation, relative_load
from ...measures.specialisation import domain_specialisation
from ...moe.router import RouterConfig
from ...moe.training import train_steps
from ...moe.transformer import TransformerConfig, TransformerModel
from ...runtime import make_generator
from ...runtime import progress as progress_bar

METHODS = ("aux_loss", "aux_free")
METHOD_LABELS = {"aux_loss": "Aux-Loss-Based", "aux_free": "Aux-Loss-Free"}
DOMAIN_LABELS = {"wikipedia": "Wikipedia (en)", "github": "GitHub", "dm_mathematics": "DM Mathematics"}


def lm_config(
    method: str,
    *,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 4,
    n_experts: int = 8,
    top_k: int = 2,
    d_expert: int = 32,
    n_shared_experts: int = 1,
    seq_len: int = 128,
    alpha: float = 0.01,
    gamma: float = 0.01,
) -> TransformerConfig:
    """Causal DeepSeek-V3-style MoE config: sigmoid affinities, top-K on s + b (aux_free) or L_Bal (aux_loss)."""
    check_choice("method", method, METHODS)
    router = RouterConfig(
        n_experts=n_experts,
        top_k=top_k,
        scoring="sigmoid",
        normalize_topk=True,
        noise="none",
        balancing=method,
        aux_loss_alpha=alpha if method == "aux_loss" else 0.0,
        aux_loss_scope="sequence",
        bias_update_rate=gamma if method == "aux_free" else 0.0,
    )
    return TransformerConfig(
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        ffn="moe",
        d_expert=d_expert,
        n_shared_experts=n_shared_experts,
        router=router,
        causal=True,
        max_len=seq_len,
    )


def specialisation_table(load: pd.DataFrame) -> pd.DataFrame:
    """Per method: domain_specialisation overall and per layer, from a relative-load table (long format)."""
    rows = []
    for method, part in load.groupby("method", sort=False):
        cube = part.pivot_table(index=["domain", "layer"], columns="expert", values="relative_load")
        domains, layers = cube.index.levels[0], sorted(part["layer"].unique())
        rel = np.stack([[cube.loc[(d, l)].to_numpy() for l in layers] for d in domains])  # [domains, layers, experts]
        row = {"method": method, "specialisation_all_layers": domain_specialisation(rel)}
        row.update({f"layer_{l}": domain_specialisation(rel[:, [i]]) for i, l in enumerate(layers)})
        row["max_relative_load"] = float(rel.max())
        rows.append(row)
    return pd.DataFrame(rows)


def mixed_domain_batch(
    streams: dict[str, torch.Tensor], per_domain: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``per_domain`` random windows from each stream: inputs, targets [D*per_domain, S] and domain ids [D*per_domain]."""
    xs, ys, ids = [], [], []
    for d, name in enumerate(streams):
        x, y = sample_lm_batch(streams[name], per_domain, seq_len, generator)
        xs.append(x)
        ys.append(y)
        ids.append(torch.full((per_domain,), d, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys), torch.cat(ids)


def per_domain_lm_loss(domains: list[str]):
    """A train_steps loss_fn for (x, y, domain_id) batches that also logs the loss of each domain."""

    def loss_fn(model, batch, generator):
        x, y, ids = batch
        logits = model(x, generator=generator)  # [B, S, vocab]
        per_token = F.cross_entropy(logits.reshape(-1, BYTE_VOCAB_SIZE), y.reshape(-1), reduction="none").view(y.shape)
        per_seq = per_token.mean(1).detach()  # [B]
        extras = {f"loss_{name}": per_seq[ids == d].mean().item() for d, name in enumerate(domains)}
        return per_token.mean(), extras

    return loss_fn


def train_lm(
    config: TransformerConfig,
    train: dict[str, torch.Tensor],
    *,
    steps: int,
    per_domain: int,
    lr: float,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> tuple[TransformerModel, pd.DataFrame]:
    """Train one byte-level MoE LM on equal numbers of windows per domain; batches depend only on ``seed``."""
    model = TransformerModel(config, input="tokens", vocab_size=BYTE_VOCAB_SIZE, head="lm", seed=seed).to(device)
    streams = dict(train)  # uint8 [tokens] per domain, on the cpu
    data_generator = make_generator(seed + 1, "cpu")  # same batch sequence for every method

    def next_batch(step):
        x, y, ids = mixed_domain_batch(streams, per_domain, config.max_len, data_generator)
        return x.to(device), y.to(device), ids.to(device)

    history = train_steps(
        model,
        next_batch,
        per_domain_lm_loss(list(streams)),
        steps,
        lr=lr,
        seed=seed,
        progress=progress,
        max_grad_norm=1.0,
    )
    return model.eval(), history


def ffn_parameters(config: TransformerConfig) -> dict[str, int]:
    """Per MoE layer, counted from the built layer: the expert parameters a token uses (the shared experts and its
    top-k routed experts), all expert parameters, and the router's (used by every token, and growing with N)."""
    layer = TransformerModel(config, input="tokens", vocab_size=BYTE_VOCAB_SIZE, head="lm").moe_layers[0]
    routed = layer.w1.numel() + layer.w2.numel() + layer.w3.numel()  # every routed expert's SwiGLU
    shared = sum(p.numel() for p in layer.shared.parameters()) if layer.shared is not None else 0
    return {
        "active expert": shared + routed * layer.top_k // layer.n_experts,
        "total expert": shared + routed,
        "router": sum(p.numel() for p in layer.router.parameters()),
    }


@torch.no_grad()
def held_out_routing(
    model: TransformerModel, held_out: dict[str, torch.Tensor], *, batch_size: int = 32, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Route every non-overlapping window of each held-out stream: (expert counts per domain/layer/expert, loss per domain)."""
    model.eval()
    device = next(model.parameters()).device
    seq, n_experts = model.config.max_len, model.config.router.n_experts
    load_rows, loss_rows = [], []
    for name, stream in held_out.items():
        n_win = (len(stream) - 1) // seq
        if n_win == 0:
            raise MoeError(f"held-out stream {name!r} has {len(stream)} tokens; it needs more than seq_len={seq}")
        tokens = stream[: n_win * seq + 1].long()
        x_all = tokens[:-1].view(n_win, seq)  # [windows, S]
        y_all = tokens[1:].view(n_win, seq)
        topk = [[] for _ in model.moe_layers]
        nll, count = 0.0, 0
        for start in progress_bar(
            range(0, n_win, batch_size), desc=f"held-out {name}", disable=not progress, leave=False
        ):
            x, y = x_all[start : start + batch_size].to(device), y_all[start : start + batch_size].to(device)
            with hooks.record(model.routers()) as seen:
                logits = model(x)  # [b, S, vocab]
            nll += F.cross_entropy(logits.reshape(-1, BYTE_VOCAB_SIZE), y.reshape(-1), reduction="sum").item()
            count += y.numel()
            for i in range(len(model.moe_layers)):
                topk[i].append(seen.output(i).topk_idx.cpu())  # [b, S, K]
        for i, parts in enumerate(topk):
            idx = torch.cat(parts)  # [windows, S, K]
            rel = relative_load(idx, n_experts)
            counts = expert_counts(idx, n_experts)
            for e in range(n_experts):
                load_rows.append(
                    {
                        "domain": name,
                        "layer": i + 1,  # layers and experts numbered from 1, as in the figures
                        "expert": e + 1,
                        "tokens_routed": int(counts[e]),
                        "n_tokens": idx.shape[0] * idx.shape[1],
                        "relative_load": float(rel[e]),
                    }
                )
        loss_rows.append(
            {
                "domain": name,
                "held_out_tokens": count,
                "held_out_loss": nll / count,
                "bits_per_byte": nll / count / np.log(2),
            }
        )
    return pd.DataFrame(load_rows), pd.DataFrame(loss_rows)


def global_maxvio(load: pd.DataFrame) -> pd.DataFrame:
    """MaxVio per method and layer of the expert counts summed over all held-out domains."""
    summed = load.groupby(["method", "layer", "expert"], sort=False)["tokens_routed"].sum().reset_index()
    return (
        summed.groupby(["method", "layer"], sort=False)["tokens_routed"]
        .apply(lambda c: max_violation(torch.tensor(c.to_numpy(), dtype=torch.float)))
        .rename("maxvio")
        .reset_index()
    )


def training_maxvio(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table method, step, layer, maxvio from train_steps histories (one batch per step)."""
    frames = []
    for method, h in histories.items():
        cols = [c for c in h.columns if c.startswith("maxvio_")]
        long = h.melt(id_vars="step", value_vars=cols, var_name="layer", value_name="maxvio")
        long["layer"] = long["layer"].str.removeprefix("maxvio_").astype(int) + 1  # numbered from 1
        long.insert(0, "method", method)
        frames.append(long)
    return pd.concat(frames, ignore_index=True)
