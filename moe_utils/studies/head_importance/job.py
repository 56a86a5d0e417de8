"""Notebook 06 over seeds: one seed's whole study (train, importance on one half, ablation on the other, controls)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from ...datasets.cognitive_tasks import (
    ASCII_VOCAB_SIZE,
    TASKS,
    accuracy_by_task,
    answer_loss,
    balanced_batch,
    disjoint_halves,
    make_task_data,
)
from ...measures.heads import (
    depth_centroid,
    importance_shares,
    last_head_outputs,
    mask_gradient_importance,
    task_similarity,
)
from ...measures.probe import probe_accuracy, probe_importance, train_probe
from ...moe.training import train_steps
from ...moe.transformer import TransformerModel
from ...runtime import make_generator
from .method import ablation_table, cross_task_table

PROBE, MASK, CONTROL = "probe gradient × activation", "head-mask gradient", "shuffled-label probe (control)"


def shuffled_labels(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded random permutation of ``labels``: the same label counts, no relation to the examples."""
    return labels[torch.randperm(len(labels), generator=make_generator(seed))]


MATH = "Math Calculation"


class MathTarget:
    """``train_steps``' stop rule: after STEPS, every STEPS/10 steps, stop once Math Calculation's accuracy on the
    selection half (never the evaluation half, which the ablations use) reaches ``target``; its checks are kept."""

    def __init__(self, model: TransformerModel, select, target: float, steps: int):
        self.model, self.select, self.target, self.steps = model, select, target, steps
        self.every = max(1, steps // 10)
        self.checks: list[tuple[int, float]] = []  # (steps done, Math accuracy on the selection half)

    def __call__(self, step: int) -> bool:
        done = step + 1
        if done < self.steps or (done - self.steps) % self.every:
            return False
        self.model.eval()
        accuracy = float(accuracy_by_task(self.model, self.select)[MATH])
        self.model.train()
        self.checks.append((done, accuracy))
        return accuracy >= self.target


def math_summary(shares: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per method: Math Calculation's mean map similarity to the other seven and its depth centroid, against theirs."""
    math = TASKS.index("Math Calculation")
    others = [c for c in range(len(TASKS)) if c != math]
    rows = []
    for m, s in shares.items():
        sim = task_similarity(s)
        among = sim[others][:, others]
        off = among[~torch.eye(len(others), dtype=bool)]
        depth = depth_centroid(s)
        rows.append(
            {
                "method": m,
                "math vs others (mean cos)": float(sim[math, others].mean()),
                "among the other seven (mean cos)": float(off.mean()),
                "least similar pair among the seven": float(off.min()),
                "math depth centroid": float(depth[math]),
                "others' depth centroid (mean)": float(depth[others].mean()),
                "max depth centroid of the seven": float(depth[others].max()),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class SeedTables:
    """One seed's whole study: accuracy, probes, importance shares, the Math check and the ablation."""

    seed: int
    families: pd.DataFrame
    history: pd.DataFrame
    seconds: float
    accuracy: pd.DataFrame  # task -> held-out accuracy, train accuracy
    probes: dict  # probe and control-probe accuracies
    shares: dict  # method -> [tasks, layers, heads] importance shares
    math: pd.DataFrame  # per method: Math's similarity and depth against the other seven
    control_correlation: dict  # task -> Pearson r of the probe's and the control's maps
    ablation: pd.DataFrame  # task, condition, accuracy, drop, seed
    cross: pd.DataFrame  # method, masked, measured, drop, seed: the cross-task ablation (evaluation half)
    split_sizes: tuple  # (selection, evaluation) prompts
    model: TransformerModel | None
    states: dict = field(default_factory=dict)  # {"model": the trained state dict} (kept by io.trained)
    math_checks: list = field(default_factory=list)  # (steps done, Math accuracy on the selection half) after STEPS


def head_importance_job(settings, seed: int, keep_model: bool = False) -> SeedTables:
    """Seed ``seed``'s study of ``settings`` (a HeadImportanceSettings): task data, model, probes; importance on the
    held-out *selection* half, ablation on the *evaluation* half; a shuffled-label probe as the control."""
    sizes, config, steps = settings.sizes, settings.model, settings.size("steps")
    n_train, n_held_out, seq_len, batch_size, lr = (
        sizes["n_train"],
        sizes["n_held_out"],
        settings.seq_len,
        settings.batch_size,
        settings.lr,
    )
    probe_steps, top_heads, n_random = sizes["probe_steps"], settings.top_heads, settings.n_random
    train, held, families = make_task_data(seed, n_train, n_held_out, seq_len=seq_len)
    select, evaluate = disjoint_halves(held, seed)
    model = TransformerModel(config, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=seed)
    batches = make_generator(seed + 1)
    reached = MathTarget(model, select, settings.math_target, steps)
    started = time.perf_counter()
    history = train_steps(
        model,
        lambda step: balanced_batch(train, batch_size, batches),
        answer_loss,
        settings.train_factor * steps,
        lr=lr,
        seed=seed,
        max_grad_norm=1.0,
        progress=False,
        stop=reached,
    )
    seconds = time.perf_counter() - started
    model.eval()
    accuracy = pd.DataFrame(
        {"held-out accuracy": accuracy_by_task(model, held), "train accuracy": accuracy_by_task(model, train)}
    )
    f_train, f_select, f_eval = (
        last_head_outputs(model, d.tokens) for d in (train, select, evaluate)
    )  # [N, L, H, d_head]
    probe = train_probe(f_train, train.task, len(TASKS), steps=probe_steps, seed=seed)
    control = train_probe(f_train, shuffled_labels(train.task, seed), len(TASKS), steps=probe_steps, seed=seed)
    shares = {
        PROBE: importance_shares(probe_importance(probe, f_select, select.task, len(TASKS))),  # [C, L, H]
        MASK: importance_shares(mask_gradient_importance(model, select, len(TASKS))),
        CONTROL: importance_shares(probe_importance(control, f_select, select.task, len(TASKS))),
    }
    probes = {
        "probe train accuracy": probe_accuracy(probe, f_train, train.task),
        "probe held-out accuracy": probe_accuracy(probe, f_eval, evaluate.task),
        "control probe train accuracy": probe_accuracy(control, f_train, train.task),
        "control probe held-out accuracy": probe_accuracy(control, f_eval, evaluate.task),
    }
    survives = {
        t: float(torch.corrcoef(torch.stack([shares[PROBE][c].flatten(), shares[CONTROL][c].flatten()]))[0, 1])
        for c, t in enumerate(TASKS)
    }  # Pearson r: how much of each probe map's pattern the control reproduces
    ablation = ablation_table(model, evaluate, shares, top_heads, n_random, seed=seed)
    cross = cross_task_table(model, evaluate, shares, top_heads)
    if keep_model:  # a fresh copy: the recorded head outputs hold autograd graphs, which cannot cross processes
        kept = TransformerModel(config, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=seed)
        kept.load_state_dict(model.state_dict())
        model = kept.eval()
    return SeedTables(
        seed,
        families,
        history,
        seconds,
        accuracy,
        probes,
        shares,
        math_summary(shares).assign(seed=seed),
        survives,
        ablation.assign(seed=seed),
        cross.assign(seed=seed),
        (len(select), len(evaluate)),
        model if keep_model else None,
        {"model": {k: v.detach().clone() for k, v in model.state_dict().items()}},
        reached.checks,
    )
