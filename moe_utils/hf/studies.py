"""Notebooks 04-07 on an external model: the same tables (and so the same plots) as for the models trained there."""
from __future__ import annotations

import torch

from ..datasets.cognitive_tasks import TaskSplit
from ..errors import MoeError, check_positive
from ..measures.heads import importance_shares
from ..measures.probe import probe_accuracy, probe_importance, train_probe
from .heads import last_position_heads, mask_gradient_importance
from .loading import DENSE_ARCHITECTURES, MOE_ARCHITECTURES, check_architecture, model_type, resolve_dtype
from .routing import stability_table, token_windows

ROUTER_STUDIES = ("04", "05")  # need routers
HEAD_STUDIES = ("06", "07")  # need attention heads


def check_model_parameter(model: str, notebook: str, dtype: str = "auto", max_tokens: int = 1) -> bool:
    """Validate MODEL (``"own"``, a local folder or a hub id of a supported architecture), DTYPE and MAX_TOKENS;
    True for an external model. Reads only the model's config, so a bad name fails before any work."""
    if not isinstance(model, str) or not model:
        raise MoeError(f"MODEL={model!r} is not allowed; write \"own\", a Hugging Face hub id or a local folder")
    resolve_dtype(dtype, torch.device("cpu"))
    check_positive("MAX_TOKENS", max_tokens)
    if model == "own":
        return False
    names = [m.strip() for m in model.split(",")] if notebook == "07" else [model]  # 07: a list of checkpoint folders
    for name in names:
        kind = model_type(name)
        if notebook in ROUTER_STUDIES:
            check_architecture(kind, MOE_ARCHITECTURES, name, f"notebook {notebook} (routers)")
        else:
            check_architecture(kind, DENSE_ARCHITECTURES, name, f"notebook {notebook} (attention heads)")
    return True


def text_windows(tokenizer, text: str, seq_len: int, max_tokens: int) -> torch.Tensor:
    """``text`` tokenised by the model's own tokenizer, cut into windows [n, seq_len] of at most ``max_tokens`` tokens."""
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
    return token_windows(ids, seq_len, max_tokens)


def external_stability(model, tokenizer, text: str, sigmas: list[float], *, seq_len: int, max_tokens: int, seed: int,
                       label: str, batch_size: int = 8):
    """Notebook 04's Jaccard-vs-σ table for an external model, on ``text`` (router-input noise, per layer)."""
    import pandas as pd

    windows = text_windows(tokenizer, text, seq_len, max_tokens)
    parts = [stability_table(model, windows[s : s + batch_size], sigmas, seed=seed + s, label=label) for s in range(0, len(windows), batch_size)]
    table = pd.concat(parts, ignore_index=True)
    weighted = table.assign(jw=table.jaccard * table.tokens, cw=table.changed * table.tokens)
    out = weighted.groupby(["layer", "dataset", "sigma", "run"], as_index=False)[["jw", "cw", "tokens"]].sum()
    return out.assign(jaccard=out.jw / out.tokens, changed=out.cw / out.tokens).drop(columns=["jw", "cw"])


def task_strings(split: TaskSplit) -> tuple[list[str], list[str]]:
    """(prompts without their left padding, one-character answers) of a task split."""
    return list(split.prompts), [chr(int(a)) for a in split.answers]


def external_head_importance(model, tokenizer, train: TaskSplit, held: TaskSplit, n_tasks: int, *, probe_steps: int, seed: int):
    """Notebook 06's two importance maps for an external model: {method: shares [tasks, layers, heads]}, probe accuracy."""
    train_prompts, _ = task_strings(train)
    held_prompts, held_answers = task_strings(held)
    features_train = last_position_heads(model, tokenizer, train_prompts)  # [N, L, H, d]
    features_held = last_position_heads(model, tokenizer, held_prompts)
    probe = train_probe(features_train, train.task, n_tasks, steps=probe_steps, seed=seed)
    shares = {
        "probe gradient × activation": importance_shares(probe_importance(probe, features_held, held.task, n_tasks)),
        "head-mask gradient": importance_shares(mask_gradient_importance(model, tokenizer, held_prompts, held_answers, held.task, n_tasks)),
    }
    return shares, probe_accuracy(probe, features_held, held.task)
