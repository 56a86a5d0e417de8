"""Notebook 08's explorer: type a prompt and its answer, see the real model's head-importance map for it (one
gradient pass) beside a family's map from the run's tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ...errors import MoeError
from ...hf.heads import encode, last_logits, mask_gradients
from ...io import paths
from ...io.explorer import check_choices, explore
from .tables import RealModelTables

DEFAULT_PROMPT = "The capital of Italy is"
DEFAULT_ANSWER = " Rome"
METHOD = "head-mask gradient"
MAX_PROMPT_TOKENS = 256  # a longer prompt keeps its last 256 tokens (one gradient pass stays interactive)
TITLE_CHARS = 60  # prompts and answers are shortened to this in titles and alternative text


def explore_tables(name: str, folder: Path | None = None) -> pd.DataFrame:
    """The run's head-mask-gradient shares per family (``RealModelTables.mask_importance``; layers and heads from 1)."""
    return RealModelTables.load(folder or paths.figures_dir(), prefix=name).read_back("mask_importance")


def controls(shares: pd.DataFrame) -> dict[str, list | str]:
    """The family whose map is shown beside, the prompt and its answer (empty: the model's own next token)."""
    return {"family": list(dict.fromkeys(shares["family"])), "prompt": DEFAULT_PROMPT, "answer": DEFAULT_ANSWER}


def next_token(model, tokenizer, prompt: str) -> tuple[str, float]:
    """The model's most likely next token after ``prompt`` and its probability."""
    with torch.no_grad():
        probs = last_logits(model, encode(tokenizer, [prompt])).softmax(-1)[0]  # [vocab]
    best = int(probs.argmax())
    return tokenizer.decode([best]), float(probs[best])


def prompt_importance(model, tokenizer, prompt: str, answer: str) -> np.ndarray:
    """|∂L/∂m_h| of one prompt (L: cross-entropy of the answer's first token) as shares of their sum, [layers, heads]."""
    grads = mask_gradients(model, tokenizer, [prompt], [answer])[0].abs()  # [L, H]
    return (grads / grads.sum().clamp_min(1e-30)).numpy()


def shortened(text: str, chars: int = TITLE_CHARS) -> str:
    """``text`` cut to ``chars`` characters with an ellipsis in the middle."""
    return text if len(text) <= chars else f"{text[: chars // 2 - 1]}…{text[-(chars - chars // 2) :]}"


def capped_prompt(tokenizer, prompt: str, limit: int = MAX_PROMPT_TOKENS) -> tuple[str, int]:
    """The prompt's last ``limit`` tokens as text, and how many tokens the prompt had."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return (prompt if len(ids) <= limit else tokenizer.decode(ids[-limit:])), len(ids)


def prompt_view(shares: pd.DataFrame, model, tokenizer, family: str, prompt: str, answer: str) -> plt.Figure:
    """Left: the typed prompt's head-importance shares (layers × heads); right: ``family``'s map from the run (its
    selection half); the title gives the model's next token and the maps' cosine similarity. A prompt longer than
    MAX_PROMPT_TOKENS keeps its last MAX_PROMPT_TOKENS tokens."""
    check_choices(controls(shares), dict(family=family, prompt=prompt, answer=answer))
    if not prompt.strip():
        raise MoeError("prompt='' is not allowed; type a prompt (the answer may stay empty: the model's next token)")
    prompt, n_tokens = capped_prompt(tokenizer, prompt)
    predicted, p = next_token(model, tokenizer, prompt)
    answer = answer or predicted
    mine = prompt_importance(model, tokenizer, prompt, answer)
    theirs = shares[shares["family"] == family].pivot(index="layer", columns="head", values="share").to_numpy()
    cosine = float((mine * theirs).sum() / (np.linalg.norm(mine) * np.linalg.norm(theirs)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    vmax = max(float(mine.max()), float(theirs.max()))
    extent = (0.5, mine.shape[1] + 0.5, mine.shape[0] + 0.5, 0.5)  # layers and heads numbered from 1
    typed = f"{shortened(prompt)!r} → {shortened(answer, 20)!r}"
    if n_tokens > MAX_PROMPT_TOKENS:
        typed += f"\n(its last {MAX_PROMPT_TOKENS} of {n_tokens} tokens)"
    for ax, grid, title in ((axes[0], mine, typed), (axes[1], theirs, f"{family} (the run)")):
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax, aspect="auto", extent=extent)
        ax.set(xlabel="head", title=title)
    axes[0].set_ylabel("layer")
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of all heads' |∂L/∂m|")
    fig.suptitle(f"next token {predicted!r} (p = {p:.2f}); cosine similarity of the two maps {cosine:.2f}", fontsize=10)
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Two layer-by-head heatmaps: the head-mask-gradient importance of the prompt {shortened(choices['prompt'])!r} "
        f"with answer {shortened(choices['answer'], 20)!r}, and the run's map for {choices['family']}."
    )


def explorer(name: str, model, tokenizer, folder: Path | None = None):
    """Notebook 08's explorer for the run named ``name`` (e.g. ``08_smollm2``) on a loaded (model, tokenizer)."""
    shares = explore_tables(name, folder)
    view = lambda **c: prompt_view(shares, model, tokenizer, **c)  # noqa: E731
    return explore(view, controls(shares), alt_text, clears={"prompt": "answer"})  # a new prompt: the model's answer
