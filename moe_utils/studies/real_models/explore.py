"""Notebook 08's explorer: type a prompt and its answer, see the real model's head-importance map for it (one
gradient pass) beside a family's map from the run's tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ...hf.heads import encode, last_logits, mask_gradients
from ...io import paths
from ...io.explorer import explore
from .tables import RealModelTables

DEFAULT_PROMPT = "The capital of Italy is"
DEFAULT_ANSWER = " Rome"
METHOD = "head-mask gradient"


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


def prompt_view(shares: pd.DataFrame, model, tokenizer, family: str, prompt: str, answer: str) -> plt.Figure:
    """Left: the typed prompt's head-importance shares (layers × heads); right: ``family``'s map from the run (its
    selection half); the title gives the model's next token and the maps' cosine similarity."""
    predicted, p = next_token(model, tokenizer, prompt or " ")
    answer = answer or predicted
    mine = prompt_importance(model, tokenizer, prompt or " ", answer)
    theirs = shares[shares["family"] == family].pivot(index="layer", columns="head", values="share").to_numpy()
    cosine = float((mine * theirs).sum() / (np.linalg.norm(mine) * np.linalg.norm(theirs)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    vmax = max(float(mine.max()), float(theirs.max()))
    extent = (0.5, mine.shape[1] + 0.5, mine.shape[0] + 0.5, 0.5)  # layers and heads numbered from 1
    for ax, grid, title in ((axes[0], mine, f"{prompt!r} → {answer!r}"), (axes[1], theirs, f"{family} (the run)")):
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax, aspect="auto", extent=extent)
        ax.set(xlabel="head", title=title)
    axes[0].set_ylabel("layer")
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of all heads' |∂L/∂m|")
    fig.suptitle(f"next token {predicted!r} (p = {p:.2f}); cosine similarity of the two maps {cosine:.2f}", fontsize=10)
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Two layer-by-head heatmaps: the head-mask-gradient importance of the prompt {choices['prompt']!r} with "
        f"answer {choices['answer']!r}, and the run's map for {choices['family']}."
    )


def explorer(name: str, model, tokenizer, folder: Path | None = None):
    """Notebook 08's explorer for the run named ``name`` (e.g. ``08_smollm2``) on a loaded (model, tokenizer)."""
    shares = explore_tables(name, folder)
    view = lambda **c: prompt_view(shares, model, tokenizer, **c)  # noqa: E731
    return explore(view, controls(shares), alt_text)
