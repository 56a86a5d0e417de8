"""Score candidate answers of a causal LM by their full log-probability, batched, with a head mask and in one pass
the head-mask gradient, the heads' outputs at the answer position (the probe's features) and residual updates.

An item's candidates share one row when, after the longest common prefix of prompt + candidate tokens, each
candidate is exactly one token (then all are read from the row's last position); otherwise every candidate gets
its own row. Rows are right-padded, so every row sees positions 0, 1, ... as it would alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from ..errors import MoeError
from ..measures.heads import relative_residual_update
from .heads import frozen_parameters, head_mask_hooks, head_shape
from .routing import decoder_layers


@dataclass
class ScoringPlan:
    """Token rows and, per item and candidate, which (row, position, token) log-probs add up to its score."""

    rows: list[list[int]]
    targets: list[list[list[tuple[int, int, int]]]]  # [item][candidate] -> [(row, position, token), ...]
    readout: list[tuple[int, int]]  # per item: (row, position predicting the answer's first own token)
    answers: list[int]
    single_pass: list[bool] = field(default_factory=list)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def build_plan(tokenizer, items) -> ScoringPlan:
    """The plan for ``items`` (objects with ``prompt``, ``candidates``, ``answer``), tokenised with the tokenizer's
    own special tokens (a BOS where it adds one)."""
    rows, targets, readout, answers, single = [], [], [], [], []
    for item in items:
        prompt = tokenizer(item.prompt, add_special_tokens=True)["input_ids"]
        full = [tokenizer(item.prompt + c, add_special_tokens=True)["input_ids"] for c in item.candidates]
        start = min(common_prefix(prompt, f) for f in full)  # first token that belongs to an answer
        if start == 0:
            raise MoeError(f"prompt {item.prompt!r} tokenises to nothing the answers share; cannot score it")
        shared = min(common_prefix(full[0], f) for f in full[1:])  # tokens all candidates have in common
        row = len(rows)
        if all(len(f) == shared + 1 for f in full) and shared >= start:
            rows.append(full[0][:shared])
            prefix = [(row, p - 1, full[0][p]) for p in range(start, shared)]
            targets.append([prefix + [(row, shared - 1, f[shared])] for f in full])
            single.append(True)
        else:
            per = []
            for f in full:
                if len(f) <= start:
                    raise MoeError(f"candidate of {item.prompt!r} adds no token to the prompt; cannot score it")
                rows.append(f)
                per.append([(len(rows) - 1, p - 1, f[p]) for p in range(start, len(f))])
            targets.append(per)
            single.append(False)
        readout.append((row, start - 1))
        answers.append(int(item.answer))
    return ScoringPlan(rows, targets, readout, answers, single)


def output_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head (and final soft-capping where the model has it) on hidden states [n, d] -> float32 logits [n, V]."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


@contextlib.contextmanager
def residual_hooks(model, record: list):
    """While active, each decoder layer's (input, output) hidden states [B, S, d] go to ``record`` in layer order."""
    hooks = []
    for layer in decoder_layers(model):

        def hook(module, args, kwargs, output):
            inputs = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            record.append((inputs.detach(), out.detach()))

        hooks.append(layer.register_forward_hook(hook, with_kwargs=True))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


@dataclass
class Scores:
    """What one scoring pass gives per item: candidate log-probs, and optionally mask gradients, features, updates."""

    logprobs: torch.Tensor  # [N, C_max], -inf where an item has fewer candidates
    answers: torch.Tensor  # [N]
    mask_grads: torch.Tensor | None = None  # [N, L, H]: ∂(-log p(answer))/∂m_h per item
    features: torch.Tensor | None = None  # [N, L, H, d_head] at the readout position
    residual: torch.Tensor | None = None  # [L]: mean ‖update‖ / ‖input‖ over the real tokens

    @property
    def correct(self) -> torch.Tensor:
        """[N] bool: the right candidate has the highest log-probability."""
        return self.logprobs.argmax(-1) == self.answers


def score(
    model,
    plan: ScoringPlan,
    mask: torch.Tensor | None = None,
    *,
    gradients: bool = False,
    features: bool = False,
    residual: bool = False,
    batch_size: int = 32,
) -> Scores:
    """One pass over ``plan``'s rows with head mask ``mask`` [L, H] (ones if None); see :class:`Scores`."""
    layers, heads = head_shape(model)
    device = next(model.parameters()).device
    mask = torch.ones(layers, heads) if mask is None else mask.float()
    n_items, c_max = len(plan.answers), max(len(t) for t in plan.targets)
    logprobs = torch.full((n_items, c_max), float("-inf"))
    grads = torch.zeros(n_items, layers, heads) if gradients else None
    feats: dict[int, torch.Tensor] = {}
    residual_sum, residual_count = torch.zeros(layers, dtype=torch.float64), 0
    by_row: dict[int, list[tuple[int, int, int, int]]] = {}  # row -> [(item, candidate, position, token)]
    for i, per in enumerate(plan.targets):
        for c, triples in enumerate(per):
            for row, pos, tok in triples:
                by_row.setdefault(row, []).append((i, c, pos, tok))
    readout_rows = {row: (i, pos) for i, (row, pos) in enumerate(plan.readout)}
    answer_rows = {row: i for i, per in enumerate(plan.targets) for row, _, _ in per[plan.answers[i]]}
    decoder = model.get_decoder()
    with frozen_parameters(model):
        for start in range(0, len(plan.rows), batch_size):
            rows = list(range(start, min(start + batch_size, len(plan.rows))))
            width = max(len(plan.rows[r]) for r in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            attention = torch.zeros(len(rows), width, dtype=torch.long)
            for b, r in enumerate(rows):
                ids[b, : len(plan.rows[r])] = torch.tensor(plan.rows[r])
                attention[b, : len(plan.rows[r])] = 1
            live = mask.to(device).clone().requires_grad_(gradients)
            record, updates = [], []
            with contextlib.ExitStack() as hooks, torch.set_grad_enabled(gradients):
                hooks.enter_context(head_mask_hooks(model, live, record))
                if residual:
                    hooks.enter_context(residual_hooks(model, updates))
                hidden = decoder(input_ids=ids.to(device), attention_mask=attention.to(device)).last_hidden_state
                wanted = [(b, i, c, pos, tok) for b, r in enumerate(rows) for i, c, pos, tok in by_row.get(r, [])]
                index_b = torch.tensor([w[0] for w in wanted], device=device)
                index_p = torch.tensor([w[3] for w in wanted], device=device)
                token = torch.tensor([w[4] for w in wanted], device=device)
                picked = F.log_softmax(output_logits(model, hidden[index_b, index_p]), -1).gather(1, token[:, None])[
                    :, 0
                ]
                item_c = torch.tensor([[w[1], w[2]] for w in wanted])
                totals = torch.zeros(n_items, c_max, dtype=picked.dtype, device=device)
                totals = totals.index_put((item_c[:, 0].to(device), item_c[:, 1].to(device)), picked, accumulate=True)
                touched = torch.unique(item_c[:, 0])
                if gradients:
                    answer_of = torch.tensor(plan.answers, device=device)
                    loss = -(totals[touched.to(device), answer_of[touched.to(device)]]).sum()
                    if loss.requires_grad:
                        loss.backward()
            filled = totals.detach().cpu()
            for i in touched.tolist():
                for c in range(len(plan.targets[i])):
                    if any(row in rows for row, _, _ in plan.targets[i][c]):
                        value = filled[i, c]
                        logprobs[i, c] = value if logprobs[i, c] == float("-inf") else logprobs[i, c] + value
            for b, r in enumerate(rows):
                if gradients and r in answer_rows:
                    grads[answer_rows[r]] += torch.stack(
                        [(m.grad[b] * raw[b]).sum((0, 2)).detach().cpu() for raw, m in record]
                    )
                if features and r in readout_rows:
                    i, pos = readout_rows[r]
                    feats[i] = torch.stack([m[b, pos].detach().float().cpu() for _, m in record])  # [L, H, d]
            if residual:
                valid = attention.bool().to(device)
                for layer, (inputs, out) in enumerate(updates):
                    residual_sum[layer] += relative_residual_update(inputs, out, valid) * int(valid.sum())
                residual_count += int(valid.sum())
    result = Scores(logprobs, torch.tensor(plan.answers), grads)
    if features:
        result.features = torch.stack([feats[i] for i in range(n_items)])
    if residual:
        result.residual = (residual_sum / max(residual_count, 1)).float()
    return result
