"""Teacher-forced answers of a causal LM: the reference answer's tokens appended to its prompt's, one batched pass
giving each answer's mean log-probability per token, whether greedy decoding would reproduce it (every answer token
is the argmax after the ones before it), and the heads' outputs at chosen answer tokens — under a multiplicative head
mask at the attention output projection's input (``ablation_topk.py`` scales masked heads by 1e-4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import MoeError
from .heads import frozen_parameters, head_mask_hooks, head_shape
from .scoring import output_logits

MASK_SCALE = 1e-4  # the paper's scale_mask factor for a masked head


@dataclass
class AnswerRows:
    """Per item: prompt + answer token ids, the first answer position and the positions whose head outputs are features."""

    ids: list[list[int]]
    start: list[int]
    picked: list[list[int]]


def answer_rows(tokenizer, prompts: list[str], answers: list[str], pick) -> AnswerRows:
    """Prompt tokens (with the tokenizer's own BOS) followed by the answer's tokens; ``pick(answer_ids)`` returns the
    indices (within the answer) of the feature tokens."""
    ids, start, picked = [], [], []
    for prompt, answer in zip(prompts, answers):
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        a = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not a:
            raise MoeError(f"answer {answer!r} tokenises to nothing; cannot teacher-force it")
        ids.append(p + a)
        start.append(len(p))
        picked.append([len(p) + i for i in pick(a)])
    return AnswerRows(ids, start, picked)


@dataclass
class AnswerScores:
    """Per item: mean log-prob per answer token, greedy exact match, and optionally head features."""

    logprob: torch.Tensor  # [N]
    exact: torch.Tensor  # [N] bool
    features: torch.Tensor | None = None  # [N, L, H, d_head]: head outputs averaged over the picked positions


def head_mask(layers: int, heads: int, masked: list[int], scale: float = MASK_SCALE) -> torch.Tensor:
    """[L, H] ones with the flat heads ``masked`` (layer · heads + head) set to ``scale``."""
    mask = torch.ones(layers * heads)
    mask[list(masked)] = scale
    return mask.view(layers, heads)


@torch.no_grad()
def teacher_forced(
    model, rows: AnswerRows, mask: torch.Tensor | None = None, *, features: bool = False, batch_size: int = 8
) -> AnswerScores:
    """One pass over ``rows`` (batched by length, right-padded) with head mask ``mask`` [L, H] (ones if None)."""
    layers, heads = head_shape(model)
    device = next(model.parameters()).device
    mask = (torch.ones(layers, heads) if mask is None else mask.float()).to(device)
    n = len(rows.ids)
    logprob, exact = torch.zeros(n), torch.zeros(n, dtype=torch.bool)
    feats = [None] * n
    order = sorted(range(n), key=lambda i: len(rows.ids[i]))
    decoder = model.get_decoder()
    with frozen_parameters(model):
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            width = max(len(rows.ids[i]) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            attention = torch.zeros(len(batch), width, dtype=torch.long)
            for b, i in enumerate(batch):
                ids[b, : len(rows.ids[i])] = torch.tensor(rows.ids[i])
                attention[b, : len(rows.ids[i])] = 1
            record: list = []
            with head_mask_hooks(model, mask, record):
                hidden = decoder(input_ids=ids.to(device), attention_mask=attention.to(device)).last_hidden_state
            for b, i in enumerate(batch):
                s, e = rows.start[i], len(rows.ids[i])
                target = ids[b, s:e].to(device)  # [answer tokens]
                logits = output_logits(model, hidden[b, s - 1 : e - 1])  # [answer tokens, vocab]
                logprob[i] = F.log_softmax(logits, -1).gather(1, target[:, None]).mean().cpu()
                exact[i] = bool((logits.argmax(-1) == target).all())
                if features:
                    at = torch.tensor(rows.picked[i], device=device)
                    feats[i] = torch.stack([masked[b, at].float().mean(0).cpu() for _, masked in record])  # [L, H, d]
    result = AnswerScores(logprob, exact)
    if features:
        result.features = torch.stack(feats)
    return result
