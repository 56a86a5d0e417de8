"""Notebook 10's pipeline on one real model: CogQA's sub-questions, the paper's features, probe, importance and elbow,
and the ablation of each function's top heads against random heads and the shuffled-label probe's top heads."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...datasets.cogqa import FILES, FUNCTIONS, load_cogqa
from ...errors import MoeError
from ...hf.teacher_forced import answer_rows, head_mask, teacher_forced
from ...measures.cognitive_probe import (
    elbow_index,
    head_features,
    item_importance,
    random_heads_outside,
    train_feature_probe,
)
from ...measures.heads import depth_centroid
from ...runtime import make_generator, progress
from ...stats import mean_test, resampled_draws
from .settings import LAYER_RANDOM, MATH, PROBE, RANDOM, SHUFFLED, SHUFFLED_TOP, TOP

WORD = re.compile(r"[a-z0-9]+")


def stratified(items: list, n: int, rng: np.random.Generator) -> list:
    """Up to ``n`` items of each function, drawn without replacement, in FUNCTIONS order then drawing order."""
    out = []
    for function in FUNCTIONS:
        pool = [i for i in items if i.function == function]
        out += [pool[j] for j in rng.permutation(len(pool))[:n]]
    return out


def cogqa_samples(settings) -> tuple[list, list, list, dict]:
    """(probe items from train, evaluation items from test, cross items: the first CROSS_PER_FUNCTION evaluation items
    of each function, and the counts: split sizes and dropped labels)."""
    folder = Path(settings.cogqa).expanduser() if settings.cogqa else None
    train, dropped_train = load_cogqa("train", folder / FILES["train"][0] if folder else None)
    test, dropped_test = load_cogqa("test", folder / FILES["test"][0] if folder else None)
    rng = np.random.default_rng(settings.seed)
    sizes = settings.sizes
    probe_items = stratified(train, sizes["per_function"], rng)
    eval_items = stratified(test, sizes["eval_per_function"], rng)
    seen: Counter = Counter()
    cross = []
    for i, item in enumerate(eval_items):
        if seen[item.function] < sizes["cross_per_function"]:
            cross.append(i)
            seen[item.function] += 1
    counts = {
        "train sub-questions": len(train),
        "test sub-questions": len(test),
        "dropped labels": dict(dropped_train + dropped_test),
        "train per function": dict(Counter(i.function for i in train)),
        "test per function": dict(Counter(i.function for i in test)),
    }
    return probe_items, eval_items, cross, counts


def token_picker(tokenizer, answers: list[str], k: int):
    """The stand-in for ``get_topk_tokens_by_answer.py`` (which asks GPT for an answer's five most important tokens):
    the answer's ``k`` rarest content tokens, rarity = how many CogQA answers hold the token (ties: earlier first);
    a content token decodes to at least one letter or digit; an answer without one uses its first ``k`` tokens."""
    frequency: Counter = Counter()
    for answer in answers:
        frequency.update(set(tokenizer(answer, add_special_tokens=False)["input_ids"]))

    def pick(ids: list[int]) -> list[int]:
        content = [j for j, t in enumerate(ids) if any(c.isalnum() for c in tokenizer.decode([t]))]
        ranked = sorted(content, key=lambda j: (frequency[ids[j]], j))[:k]
        return sorted(ranked) if ranked else list(range(min(k, len(ids))))

    return pick


def probe_features(heads: torch.Tensor) -> torch.Tensor:
    """The paper's features of every item: heads [N, L, H, d] (already averaged over the picked tokens) ->
    [N, L·H, 2d] with each head's layer mean appended."""
    return torch.stack([head_features(h[:, None], [0]) for h in heads])


def words(text: str) -> list[str]:
    """Lower-case words and numbers of ``text``."""
    return WORD.findall(text.lower())


def subquestion(prompt: str) -> str:
    """The sub-question of one of the paper's prompts (between its <subquestion> tags)."""
    return prompt.split("<subquestion>\n", 1)[1].split("\n</subquestion>", 1)[0]


def text_only_accuracy(train: list, test: list, seed: int, steps: int = 300) -> tuple[float, np.ndarray]:
    """The format-only control: a bag-of-words logistic regression on the sub-question and its reference answer (no
    model at all), trained on ``train``; its accuracy on ``test`` and per-item correctness."""
    vocab = {
        w: i for i, w in enumerate(sorted({w for it in train for w in words(subquestion(it.prompt) + " " + it.answer)}))
    }

    def bag(items):
        x = torch.zeros(len(items), len(vocab))
        for r, it in enumerate(items):
            for w in words(subquestion(it.prompt) + " " + it.answer):
                if w in vocab:
                    x[r, vocab[w]] += 1
        return torch.log1p(x)

    labels = torch.tensor([FUNCTIONS.index(i.function) for i in train])
    torch.manual_seed(seed)
    model = torch.nn.Linear(len(vocab), len(FUNCTIONS))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=1e-4)
    x = bag(train)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model(bag(test)).argmax(1)
    truth = torch.tensor([FUNCTIONS.index(i.function) for i in test])
    correct = (predicted == truth).numpy()
    return float(correct.mean()), correct


def ranked_heads(importance: torch.Tensor) -> tuple[list[list[int]], list[int]]:
    """Per function: every head (flat index) by importance, highest first, and the elbow count of that curve (at
    least 1), as ``get_importance.py`` and ``ablation_topk.py`` cut it."""
    ranked, counts = [], []
    for row in importance:
        order = torch.argsort(row, descending=True).tolist()
        ranked.append(order)
        counts.append(max(1, elbow_index(row[order].numpy())))
    return ranked, counts


def depth_rows(
    per_item: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int], method: str, n_boot: int, seed: int
):
    """Each function's depth centroid (|mean importance| as shares, layers from 1) with a 95 % bootstrap interval over
    its items, and Math's depth minus the mean of the others', same resamples."""
    groups = [np.flatnonzero(labels.numpy() == f) for f in range(len(FUNCTIONS))]

    def depths(draw):
        maps = torch.stack([per_item[g].mean(0) if len(g) else torch.zeros(per_item.shape[1]) for g in draw])
        return depth_centroid(maps.abs().view(len(FUNCTIONS), *shape).clamp_min(1e-30))  # [functions]

    point = depths(groups)
    draws = torch.from_numpy(resampled_draws(lambda d: depths(d).numpy(), groups, n_boot, seed))  # [n_boot, functions]
    m = FUNCTIONS.index(MATH)
    others = [f for f in range(len(FUNCTIONS)) if f != m]
    rows = [
        {
            "method": method,
            "function": FUNCTIONS[f],
            "depth": float(point[f]),
            "low": float(np.percentile(draws[:, f], 2.5)),
            "high": float(np.percentile(draws[:, f], 97.5)),
        }
        for f in range(len(FUNCTIONS))
    ]
    diff = draws[:, m] - draws[:, others].mean(1)
    rows.append(
        {
            "method": method,
            "function": "Math − mean of the others",
            "depth": float(point[m] - point[others].mean()),
            "low": float(np.percentile(diff, 2.5)),
            "high": float(np.percentile(diff, 97.5)),
        }
    )
    return rows


def cognitive_mirrors(model, tokenizer, settings, log=print) -> dict:
    """Every table of notebook 10 for one loaded model (see ``tables.CognitiveMirrorsTables``)."""
    from ...hf.heads import head_shape

    started = time.perf_counter()
    sizes = settings.sizes
    probe_items, eval_items, cross, counts = cogqa_samples(settings)
    layers, heads = head_shape(model)
    pick = token_picker(tokenizer, [i.answer for i in probe_items + eval_items], settings.top_tokens)
    bs = settings.batch_size

    def rows_of(items):
        return answer_rows(tokenizer, [i.prompt for i in items], [i.answer for i in items], pick)

    probe_rows, eval_rows = rows_of(probe_items), rows_of(eval_items)
    train = teacher_forced(model, probe_rows, features=True, batch_size=bs)
    base = teacher_forced(model, eval_rows, features=True, batch_size=bs)
    log(
        f"{len(probe_items)} probe / {len(eval_items)} evaluation sub-questions "
        f"({np.mean([len(r) for r in probe_rows.ids + eval_rows.ids]):.0f} tokens on average): features in "
        f"{time.perf_counter() - started:.0f} s"
    )
    y_train = torch.tensor([FUNCTIONS.index(i.function) for i in probe_items])
    y_eval = torch.tensor([FUNCTIONS.index(i.function) for i in eval_items])
    x_train, x_eval = probe_features(train.features), probe_features(base.features)
    scale = x_train.std().clamp_min(1e-12)  # one scalar for all features: the probe sees the model's own geometry
    x_train, x_eval = x_train / scale, x_eval / scale
    shuffled = y_train[torch.randperm(len(y_train), generator=make_generator(settings.seed + 1))]
    probes = {
        PROBE: train_feature_probe(x_train, y_train, len(FUNCTIONS), sizes["epochs"], seed=settings.seed),
        SHUFFLED: train_feature_probe(x_train, shuffled, len(FUNCTIONS), sizes["epochs"], seed=settings.seed),
    }
    accuracy_rows = []
    for method, probe in probes.items():
        with torch.no_grad():
            correct = (probe(x_eval).argmax(1) == y_eval).float().numpy()
        t = mean_test(correct)
        accuracy_rows.append({"classifier": method, "accuracy": t["mean"], "low": t["low"], "high": t["high"]})
    text_acc, text_correct = text_only_accuracy(probe_items, eval_items, settings.seed)
    t = mean_test(text_correct)
    accuracy_rows.append(
        {"classifier": "words only (no model)", "accuracy": t["mean"], "low": t["low"], "high": t["high"]}
    )
    accuracy = pd.DataFrame(accuracy_rows).assign(chance=1 / len(FUNCTIONS), n=len(eval_items))

    per_item = {m: item_importance(p, x_train, y_train if m == PROBE else shuffled) for m, p in probes.items()}
    importance, ranked, k = {}, {}, {}
    for method, values in per_item.items():
        labels = y_train if method == PROBE else shuffled
        importance[method] = torch.stack([values[labels == f].mean(0) for f in range(len(FUNCTIONS))])  # [F, L·H]
        ranked[method], k[method] = ranked_heads(importance[method])
    log(f"elbow head counts (probe): {dict(zip(FUNCTIONS, k[PROBE]))}")

    generator = make_generator(settings.seed + 2)
    groups = [np.flatnonzero(y_eval.numpy() == f) for f in range(len(FUNCTIONS))]
    results = {"baseline": (base.logprob.numpy(), base.exact.numpy().astype(float))}
    heads_rows = []
    for f, function in enumerate(progress(FUNCTIONS, desc="ablations")):
        own = [eval_items[i] for i in groups[f]]
        if not own:
            continue
        own_rows = rows_of(own)
        top = ranked[PROBE][f][: k[PROBE][f]]
        sets = {TOP: [top], SHUFFLED_TOP: [ranked[SHUFFLED][f][: len(top)]]}
        sets[RANDOM], sets[LAYER_RANDOM] = [], []
        for condition, n, matched in (
            (RANDOM, sizes["n_random"], False),
            (LAYER_RANDOM, settings.n_layer_random, True),
        ):
            for _ in range(n):
                try:
                    sets[condition].append(random_heads_outside(top, layers, heads, generator, layer_matched=matched))
                except MoeError:  # the top set leaves too few heads outside it (or in its layers): no such control
                    break
        for condition, draws in sets.items():
            if not draws:
                continue
            scores = [teacher_forced(model, own_rows, head_mask(layers, heads, d), batch_size=bs) for d in draws]
            lp = torch.stack([s.logprob for s in scores]).mean(0).numpy()
            em = torch.stack([s.exact.float() for s in scores]).mean(0).numpy()
            results[(function, condition)] = (lp, em)
            for draw_index, d in enumerate(draws):
                heads_rows += [
                    {
                        "function": function,
                        "condition": condition,
                        "draw": draw_index,
                        "layer": h // heads + 1,
                        "head": h % heads + 1,
                    }
                    for h in d
                ]
        others = [i for i in cross if y_eval[i] != f]
        other_rows = rows_of([eval_items[i] for i in others])
        crossed = teacher_forced(model, other_rows, head_mask(layers, heads, top), batch_size=bs)
        results[(function, "top, other functions")] = (
            crossed.logprob.numpy(),
            crossed.exact.numpy().astype(float),
            others,
        )
    log(f"ablations done at {time.perf_counter() - started:.0f} s")
    return {
        "probe_items": probe_items,
        "eval_items": eval_items,
        "counts": counts,
        "shape": (layers, heads),
        "accuracy": accuracy,
        "importance": importance,
        "per_item": per_item,
        "labels": {PROBE: y_train, SHUFFLED: shuffled},
        "k": k,
        "heads": pd.DataFrame(heads_rows),
        "results": results,
        "groups": groups,
        "seconds": time.perf_counter() - started,
    }
