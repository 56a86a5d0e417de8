"""The upcycled MoE's training and measures: DeepSeek-V3's two balancing methods on a router that reads a pretrained
model's hidden states, its expert load per domain, its routing under input noise and what that noise costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ...datasets.corpora.domains import DOMAINS, load_domain_texts
from ...errors import MoeError
from ...hf.partial import logits_from
from ...hf.routing import decoder_layers
from ...measures import hooks
from ...measures.routing import expert_counts, jaccard, max_violation, relative_noise, selection_sets
from ...moe.router import sequence_aux_loss

CHARS_PER_TOKEN = 6  # generous: text enough for the windows asked for (a shortfall is one line)


@dataclass
class DomainWindows:
    """Token windows per domain: train (a pool the seeds draw from in their own order) and held-out documents."""

    train: dict[str, torch.Tensor]  # domain -> [n_train, S] token ids
    held_out: dict[str, torch.Tensor]  # domain -> [n_held, S]
    held_doc: dict[str, torch.Tensor]  # domain -> [n_held, S] index of each token's held-out document
    info: pd.DataFrame  # per domain: documents and tokens of each split


def domain_windows(tokenizer, seed: int, seq_len: int, n_train: int, n_held: int) -> DomainWindows:
    """Notebook 05's three domains in the model's tokens: held-out documents first (each cut to ``seq_len`` tokens,
    so the held-out windows span many documents), then train documents; the two share none. Documents are joined
    by the end-of-text token."""
    eos = tokenizer.eos_token_id
    train, held, held_doc, rows = {}, {}, {}, []
    for domain in DOMAINS:
        need = (n_train + n_held) * seq_len
        limit = need * CHARS_PER_TOKEN if domain == "dm_mathematics" else None  # generated: as much as needed
        docs = iter(load_domain_texts(domain, seed=seed, max_chars=limit).documents)
        ids = (i for i in (tokenizer(doc, add_special_tokens=False)["input_ids"] for doc in docs) if i)  # lazily
        held_ids, held_docs, n_docs = [], [], 0
        while len(held_ids) < n_held * seq_len and (doc := next(ids, None)) is not None:
            part = doc[: seq_len - 1] + [eos]
            held_ids += part
            held_docs += [n_docs] * len(part)
            n_docs += 1
        train_ids, n_train_docs = [], 0
        while len(train_ids) < n_train * seq_len and (doc := next(ids, None)) is not None:
            train_ids += doc + [eos]
            n_train_docs += 1
        if len(held_ids) < n_held * seq_len or len(train_ids) < n_train * seq_len:
            raise MoeError(
                f"the {domain} text gives {len(held_ids)} held-out and {len(train_ids)} train tokens; "
                f"HELD_OUT_WINDOWS × SEQ_LEN = {n_held * seq_len} and TRAIN_WINDOWS × SEQ_LEN = {n_train * seq_len} "
                "are too many"
            )
        held[domain] = torch.tensor(held_ids[: n_held * seq_len]).view(n_held, seq_len)
        held_doc[domain] = torch.tensor(held_docs[: n_held * seq_len]).view(n_held, seq_len)
        train[domain] = torch.tensor(train_ids[: n_train * seq_len]).view(n_train, seq_len)
        rows.append(
            {
                "domain": domain,
                "held-out documents": int(held_doc[domain].unique().numel()),
                "held-out tokens": held[domain].numel(),
                "train documents": n_train_docs,
                "train tokens": train[domain].numel(),
            }
        )
    return DomainWindows(train, held, held_doc, pd.DataFrame(rows))


def moe_gates(model) -> dict[int, torch.nn.Module]:
    """Decoder layer index (from 0) -> router of every MoE layer (empty for a dense model)."""
    return {
        i: layer.mlp.gate
        for i, layer in enumerate(decoder_layers(model))
        if hasattr(getattr(layer, "mlp", None), "gate") and hasattr(layer.mlp.gate, "e_score_correction_bias")
    }


def trainable_parameters(model, first: int) -> list[torch.nn.Parameter]:
    """Freeze everything but the feed-forward (experts and routers, or the dense FFN) of layers ``first`` and up."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    for layer in decoder_layers(model)[first:]:
        for name, p in layer.mlp.named_parameters():
            if "shared_experts" not in name:
                p.requires_grad_(True)
                params.append(p)
    return params


@torch.no_grad()
def update_correction_bias(gate, indices: torch.Tensor, gamma: float) -> torch.Tensor:
    """DeepSeek-V3's auxiliary-loss-free step: b_i += γ · sign(mean load − load_i) over the batch's top-k choices.
    indices: [tokens, k]; returns the load [experts] it balanced."""
    load = expert_counts(indices.reshape(-1, indices.shape[-1]), gate.e_score_correction_bias.numel()).float()
    gate.e_score_correction_bias += gamma * torch.sign(load.mean() - load)
    return load


def lm_losses(logits: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy per window position. logits [B, S, V], windows [B, S] -> [B, S − 1]."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), windows[:, 1:].flatten(), reduction="none").view(
        windows.shape[0], -1
    )


def aux_loss(routed: hooks.Recording, gates: dict, shape: tuple[int, int], alpha: float) -> torch.Tensor:
    """The sequence-wise balance loss α Σ_i f_i P_i (DeepSeek-V3 eq. 17–20) summed over the MoE layers."""
    total = torch.zeros(())
    for i in gates:
        logits, _, idx = routed.output(i)  # [B·S, E], [B·S, K], [B·S, K]
        scores = logits.sigmoid().view(*shape, -1)  # [B, S, E]
        total = total + sequence_aux_loss(scores, idx.view(*shape, -1), alpha)
    return total


def train_step(model, opt, hidden, windows, domain_ids, first: int, method: str, rate: float) -> dict:
    """One AdamW step on the cached inputs ``hidden`` [B, S, d] of layer ``first``; the balancing of ``method``."""
    gates = moe_gates(model)
    with hooks.record(gates) as routed:
        per_token = lm_losses(logits_from(model, hidden, first), windows)  # [B, S − 1]
    lm = per_token.mean()
    aux = aux_loss(routed, gates, tuple(windows.shape), rate) if method == "aux_loss" else torch.zeros(())
    opt.zero_grad(set_to_none=True)
    (lm + aux).backward()
    opt.step()
    row = {"loss": lm.item(), "aux_loss": aux.item()}
    per_seq = per_token.detach().mean(1)  # [B]
    row.update({f"loss_{d}": per_seq[domain_ids == i].mean().item() for i, d in enumerate(DOMAINS)})
    for i, gate in gates.items():
        idx = routed.output(i)[2]
        load = (
            update_correction_bias(gate, idx, rate)
            if method == "aux_free"
            else expert_counts(idx, gate.e_score_correction_bias.numel())
        )
        row[f"maxvio_{i + 1}"] = max_violation(load)
    return row


@torch.no_grad()
def held_out_measures(model, hidden: dict, windows: dict, docs: dict, first: int, batch_size: int = 8):
    """Per domain, from the cached inputs of layer ``first`` in batches of ``batch_size`` windows: held-out loss,
    and per MoE layer the tokens each document sends to each expert. Returns (losses, {domain: [docs, layers, E]})."""
    gates = moe_gates(model)
    losses, counts = [], {}
    for domain, h in hidden.items():
        w, d = windows[domain], docs[domain]
        n_docs = int(d.max()) + 1
        c = None
        nll = 0.0
        for start in range(0, len(w), batch_size):
            with hooks.record(gates) as routed:
                logits = logits_from(model, h[start : start + batch_size], first)
            nll += lm_losses(logits, w[start : start + batch_size]).sum().item()
            if gates:
                layers = []
                for i, gate in gates.items():
                    idx = routed.output(i)[2]  # [b·S, K]
                    n_e = gate.e_score_correction_bias.numel()
                    doc = d[start : start + batch_size].reshape(-1, 1).expand_as(idx)  # [b·S, K]
                    layers.append(torch.bincount((doc * n_e + idx).flatten(), minlength=n_docs * n_e).view(n_docs, n_e))
                part = torch.stack(layers, 1)  # [docs, layers, E]
                c = part if c is None else c + part
        n_pred = w.shape[0] * (w.shape[1] - 1)
        losses.append({"domain": domain, "held-out loss": nll / n_pred, "predicted tokens": n_pred})
        if c is not None:
            counts[domain] = c.numpy()
    return pd.DataFrame(losses), counts


def load_rows(counts: dict[str, np.ndarray], layers: list[int], top_k: int) -> pd.DataFrame:
    """Relative load per domain × layer × expert (notebook 05's schema) from per-document counts [docs, layers, E]."""
    rows = []
    for domain, c in counts.items():
        summed = c.sum(0)  # [layers, E]
        for li, layer in enumerate(layers):
            n_e, routed = summed.shape[-1], summed[li].sum()
            for e in range(n_e):
                rows.append(
                    {
                        "domain": domain,
                        "layer": layer + 1,  # numbered from 1
                        "expert": e + 1,
                        "tokens_routed": int(summed[li, e]),
                        "n_tokens": int(routed) // top_k,
                        "relative_load": float(summed[li, e] / (routed / n_e)),  # tokens / (K·T/N)
                    }
                )
    return pd.DataFrame(rows)


class PinnedRouting:
    """A forward hook that keeps a router's clean top-k choice while its weights follow the (noisy) input."""

    def __init__(self, indices: torch.Tensor):
        self.indices = indices  # [tokens, K]

    def __call__(self, gate, args, output):
        logits = output[0]
        weights = logits.sigmoid().gather(1, self.indices)
        if gate.norm_topk_prob:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return logits, weights * gate.routed_scaling_factor, self.indices


def kl_and_flips(clean: torch.Tensor, noisy: torch.Tensor) -> tuple[float, float]:
    """Mean KL(p_clean ‖ p_noisy) of the next-token distributions and the share of changed top-1 predictions."""
    lp, lq = clean.log_softmax(-1), noisy.log_softmax(-1)  # [B, S, V]
    kl = (lp.exp() * (lp - lq)).sum(-1)  # [B, S]
    return float(kl.mean()), float((clean.argmax(-1) != noisy.argmax(-1)).float().mean())


class Routed(Exception):
    """Raised by a router hook to end a forward once the router has chosen (the rest of the model is not needed)."""


def routing_only(gate, args, output):
    """A forward hook that keeps the router's output and stops the forward."""
    raise Routed(output)


@torch.no_grad()
def noise_measures(model, hidden: torch.Tensor, first: int, sigmas, seed: int, costs: bool = True) -> pd.DataFrame:
    """x' = x + ε at the input of every block from ``first`` up (before its attention; σ relative to each token's
    RMS), the block's attention and router run again on x': per block and σ, the Jaccard of its top-k sets and the
    share of tokens that change them; with ``costs``, the rest of the model runs too: the next-token KL and top-1
    flips — free, and with the routing pinned to the clean choice (the noise's cost without the routing change).
    ``hidden``: [B, S, d] input of layer ``first``; the same ε for every pass at one block and σ."""
    layers = decoder_layers(model)
    gates = moe_gates(model)
    with hooks.record({i: layers[i] for i in range(first, len(layers))}) as seen, hooks.record(gates) as routed:
        clean = logits_from(model, hidden, first)  # [B, S, V]
    rows = []
    for i in range(first, len(layers)):
        if not costs and i not in gates:
            continue
        x = seen.input(i)  # [B, S, d]: the block's input, before its attention
        for s, sigma in enumerate(sigmas):
            generator = torch.Generator().manual_seed(int(seed) * 1000 + i * 10 + s)
            noisy = relative_noise(x, float(sigma), generator)
            row = {"layer": i + 1, "sigma": float(sigma), "tokens": x.shape[0] * x.shape[1]}
            if i in gates:
                clean_idx = routed.output(i)[2]  # [tokens, K]
                handle = gates[i].register_forward_hook(routing_only)
                try:
                    logits_from(model, noisy, i)
                except Routed as stop:
                    noisy_idx = stop.args[0][2]
                finally:
                    handle.remove()
                n_e = gates[i].e_score_correction_bias.numel()
                j = jaccard(selection_sets(clean_idx, n_e), selection_sets(noisy_idx, n_e))  # [tokens]
                row.update({"jaccard": float(j.mean()), "changed": float((j < 1).float().mean())})
            if costs:
                kl, flips = kl_and_flips(clean, logits_from(model, noisy, i))
                row.update({"kl": kl, "top-1 flips": flips})
                if i in gates:
                    handle = gates[i].register_forward_hook(PinnedRouting(clean_idx))
                    try:
                        kl_p, flips_p = kl_and_flips(clean, logits_from(model, noisy, i))
                    finally:
                        handle.remove()
                    row.update({"kl (routing pinned)": kl_p, "top-1 flips (routing pinned)": flips_p})
            rows.append(row)
    return pd.DataFrame(rows)


@torch.no_grad()
def layer_profile(model, hidden: torch.Tensor, windows: torch.Tensor, first: int) -> pd.DataFrame:
    """Per block from ``first`` up (source 002's per-layer activation): mean ‖update‖/‖input‖ of the residual
    stream per token, the feed-forward's share of it, and the loss on these windows."""
    layers = decoder_layers(model)
    points = {i: layers[i] for i in range(first, len(layers))}
    mlps = {i: layers[i].mlp for i in points}
    with hooks.record(points) as blocks, hooks.record(mlps) as ffn:
        loss = lm_losses(logits_from(model, hidden, first), windows).mean().item()
    rows = []
    for i in points:
        x, y = blocks.input(i), blocks.output(i)
        y = y[0] if isinstance(y, tuple) else y
        norm = x.norm(dim=-1).clamp_min(1e-12)  # [B, S]
        rows.append(
            {
                "layer": i + 1,
                "relative residual update": float(((y - x).norm(dim=-1) / norm).mean()),
                "relative feed-forward output": float((ffn.output(i).norm(dim=-1) / norm).mean()),
                "loss": loss,
            }
        )
    return pd.DataFrame(rows)
