"""Head importance (probe gradient × activation, head-mask gradients), task generators and checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from moe_utils.datasets.cognitive_tasks import (
    ANSWERS,
    ASCII_VOCAB_SIZE,
    TASKS,
    answer_loss,
    balanced_batch,
    disjoint_halves,
    generate_family,
    is_balanced,
    make_task_data,
    make_world,
)
from moe_utils.errors import MoeError
from moe_utils.measures.heads import (
    head_mask_gradients,
    importance_shares,
    last_head_outputs,
    mask_gradient_importance,
    masked_heads,
    task_similarity,
)
from moe_utils.measures.probe import probe_importance, train_probe
from moe_utils.moe.training import load_checkpoint, save_checkpoint, train_steps
from moe_utils.moe.transformer import TransformerConfig, TransformerModel
from moe_utils.studies.head_importance.job import shuffled_labels
from moe_utils.studies.layer_activation.method import residual_updates

TINY = dict(d_model=16, n_heads=4, n_layers=2, ffn="dense", d_ff=32, causal=True, max_len=20)


def tiny_model(seed: int = 0) -> TransformerModel:
    return TransformerModel(
        TransformerConfig(**TINY), input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=seed
    )


@pytest.fixture(scope="module")
def data():
    return make_task_data(seed=3, n_train=40, n_held_out=16)


def test_generators_are_deterministic_with_disjoint_held_out_split():
    world = make_world(1)
    for task in range(len(TASKS)):
        a = generate_family(task, 1, 30, 10, world)
        assert a == generate_family(task, 1, 30, 10, make_world(1)), TASKS[task]
        assert a != generate_family(task, 2, 30, 10), TASKS[task]
        train, held = {p for p, _ in a["train"]}, {p for p, _ in a["held_out"]}
        assert len(train) == 30 and len(held) == 10 and not train & held, TASKS[task]
        assert all(len(answer) == 1 and answer in ANSWERS[task] for _, answer in a["train"] + a["held_out"])
    with pytest.raises(MoeError, match="task"):
        generate_family(8, 0, 1, 1)


def test_generated_answers_are_correct():
    world = make_world(0)
    family = generate_family(5, 0, 50, 10, world)  # brackets
    assert all((answer == "Y") == is_balanced(prompt[:-1]) for prompt, answer in family["train"])
    for prompt, answer in generate_family(7, 0, 50, 10, world)["train"]:  # arithmetic, left to right == Python's
        assert str(eval(prompt[:-1])) == answer
    for prompt, answer in generate_family(1, 0, 50, 10, world)["train"]:  # retrieval
        context, key = prompt[:-1].split(":")
        assert dict(zip(context[::2], context[1::2]))[key] == answer


def test_splits_encode_left_padded_and_batches_are_balanced(data):
    train, held, info = data
    assert train.tokens.shape[1] == 20 and (train.tokens[:, -1] != 0).all()  # last position = end of prompt
    assert set(train.prompts).isdisjoint(held.prompts)
    tokens, answers = balanced_batch(train, 64, torch.Generator().manual_seed(0))
    assert tokens.shape == (64, 20) and answers.shape == (64,)
    assert len(info) == len(TASKS)


def test_probe_importance_of_a_zeroed_head_is_zero(data):
    train, held, _ = data
    model = tiny_model()
    mask = torch.ones(2, 4)
    mask[1, 2] = 0.0
    features = last_head_outputs(model, train.tokens, head_mask=mask)  # [N, L, H, d_head]
    assert features.shape == (len(train), 2, 4, 4) and features[:, 1, 2].abs().sum() == 0
    probe = train_probe(features, train.task, len(TASKS), steps=20)
    importance = probe_importance(probe, features, train.task, len(TASKS))  # [C, L, H]
    assert importance.shape == (len(TASKS), 2, 4)
    assert (importance[:, 1, 2] == 0).all() and (importance[:, 0] != 0).any()


def test_probe_importance_is_gradient_times_activation_of_a_linear_probe(data):
    train, _, _ = data
    features = last_head_outputs(tiny_model(), train.tokens)
    probe = train_probe(features, train.task, len(TASKS), steps=5)
    importance = probe_importance(probe, features, train.task, len(TASKS))
    w = probe.weight.detach().view(len(TASKS), 2, 4, 4)  # [C, L, H, d_head]
    c = 3
    expected = (w[c] * features[train.task == c]).mean(-1).mean(0)
    torch.testing.assert_close(importance[c], expected)


def test_head_mask_gradient_matches_finite_difference(data):
    _, held, _ = data
    model = tiny_model(seed=1).double()
    tokens, answers = held.tokens[:3], held.answers[:3]
    grads = head_mask_gradients(model, tokens, answers)  # [B, L, H]

    def loss(mask, b):
        with masked_heads(model, mask):
            logits = model(tokens[b : b + 1])[:, -1]
        return F.cross_entropy(logits, answers[b : b + 1], reduction="sum")

    eps = 1e-5
    for b in range(3):
        for layer, head in [(0, 0), (1, 3), (0, 2)]:
            up, down = torch.ones(2, 4, dtype=torch.double), torch.ones(2, 4, dtype=torch.double)
            up[layer, head] += eps
            down[layer, head] -= eps
            numeric = (loss(up, b) - loss(down, b)) / (2 * eps)
            torch.testing.assert_close(grads[b, layer, head], numeric.detach(), rtol=1e-5, atol=1e-8)


def test_importance_shares_sum_to_one_and_similarity_is_cosine(data):
    _, held, _ = data
    model = tiny_model()
    importance = mask_gradient_importance(model, held, len(TASKS), batch_size=7)  # [C, L, H], batches of odd size
    shares = importance_shares(importance)
    torch.testing.assert_close(shares.sum((1, 2)), torch.ones(len(TASKS)))
    assert (shares >= 0).all()
    sim = task_similarity(shares)
    torch.testing.assert_close(sim.diagonal(), torch.ones(len(TASKS)))
    with pytest.raises(MoeError, match="zero"):
        importance_shares(torch.zeros(1, 2, 4))
    assert residual_updates(model, held.tokens).shape == (2,)


def test_checkpoints_from_training_reload_bit_exactly(data, tmp_path):
    train, held, _ = data
    model = tiny_model()
    generator = torch.Generator().manual_seed(0)
    saved = []

    def on_step(step, row):
        if step in (1, 3):
            save_checkpoint(model, tmp_path / f"step{step + 1}.pt", extra={"step": step + 1})
            saved.append({k: v.clone() for k, v in model.state_dict().items()})

    train_steps(model, lambda s: balanced_batch(train, 8, generator), answer_loss, 4, progress=False, on_step=on_step)
    for path, state in zip(["step2.pt", "step4.pt"], saved):
        loaded = load_checkpoint(tmp_path / path)
        assert all(torch.equal(state[k], v) for k, v in loaded.state_dict().items())
    assert torch.equal(loaded(held.tokens), model.eval()(held.tokens))
    assert torch.equal(
        head_mask_gradients(loaded, held.tokens, held.answers), head_mask_gradients(model, held.tokens, held.answers)
    )


def test_selection_and_evaluation_halves_share_no_prompt():
    _, held, _ = make_task_data(0, 40, 20, seq_len=14)
    select, evaluate = disjoint_halves(held, seed=1)
    assert not set(select.prompts) & set(evaluate.prompts)
    assert len(select) + len(evaluate) == len(held)
    for task in range(len(TASKS)):  # every family in both halves, split evenly
        n_sel, n_eval = int((select.task == task).sum()), int((evaluate.task == task).sum())
        assert abs(n_sel - n_eval) <= 1 and n_sel + n_eval == int((held.task == task).sum())
    again, _ = disjoint_halves(held, seed=1)
    assert again.prompts == select.prompts


def test_raw_layer_importance_is_not_rescaled():
    from moe_utils.studies.layer_activation.method import raw_layer_importance

    by_task = torch.rand(8, 3, 4, generator=torch.Generator().manual_seed(0))
    raw = raw_layer_importance(by_task)
    assert torch.allclose(raw_layer_importance(2 * by_task), 2 * raw)  # twice the gradient, twice the value
    assert torch.allclose(
        importance_shares((2 * by_task).mean(0)), importance_shares(by_task.mean(0))
    )  # the share cannot see it


def test_shuffled_labels_keep_the_counts_and_lose_the_order():
    labels = torch.arange(8).repeat_interleave(50)
    shuffled = shuffled_labels(labels, seed=0)
    assert torch.equal(torch.bincount(shuffled), torch.bincount(labels))
    assert (shuffled == labels).float().mean() < 0.3
    assert torch.equal(shuffled, shuffled_labels(labels, seed=0))


def tiny_head_tables(math_deeper: bool = True, beyond_layers: bool = True, specific: bool = True):
    """Hand-made notebook-06 tables: 3 seeds, 8 families, 2 layers × 2 heads; margins computed as the study does."""
    from types import SimpleNamespace

    from moe_utils.datasets.cognitive_tasks import TASKS
    from moe_utils.studies.head_importance.job import CONTROL, MASK, PROBE
    from moe_utils.studies.head_importance.method import matched_condition, random_condition
    from moe_utils.studies.head_importance.run import ablation_statistics, family_margins, specificity_tables
    from moe_utils.studies.head_importance.settings import HeadImportanceSettings

    settings = HeadImportanceSettings(n_layers=2, n_heads=2, d_model=4, top_heads=1)
    accuracy = pd.DataFrame(
        {"held-out accuracy": [0.9] * 7 + [0.3], "chance": [0.25] * 8, "majority": [0.3] * 8}, index=list(TASKS)
    )
    shares = torch.full((8, 2, 2), 0.25)
    shares[:, 0] = torch.tensor([0.4, 0.1])  # layer 0 holds half of every map
    depth = [0.2, -0.1, 0.3] if not math_deeper else [0.2, 0.1, 0.3]
    seed_table = pd.DataFrame(
        {
            "seed": [0, 1, 2],
            "mean held-out accuracy": [0.8, 0.82, 0.84],
            "probe held-out accuracy": [0.99, 0.98, 0.97],
            "control probe held-out accuracy": [0.12, 0.13, 0.11],
            "control correlation (task mean)": [0.5, 0.6, 0.7],
            "steps trained": [2500, 4000, 7500],
            "math held-out accuracy": [0.61, 0.6, 0.45],
            "math selection accuracy at STEPS": [0.6, 0.3, 0.3],
            "math selection accuracy at the end": [0.6, 0.62, 0.5],
        }
    )
    for tag in ("mask", "probe", "control"):
        seed_table[f"{tag}: math cos − others cos"] = [-0.1, -0.2, -0.3]
        seed_table[f"{tag}: math depth − max other depth"] = depth
        seed_table[f"{tag}: math depth − others' mean depth"] = [0.4, 0.5, 0.6]
        seed_table[f"{tag}: math depth − learned others' mean depth"] = [0.4, 0.5, 0.6]
    matched = [0.02, 0.02, 0.02] if beyond_layers else [0.05, 0.12, 0.15]  # the same layers' random heads' drops
    rows = []
    for i, seed in enumerate((0, 1, 2)):
        for task in TASKS:
            for method in (MASK, PROBE, CONTROL):
                rows.append({"seed": seed, "task": task, "condition": f"top-1 ({method})", "drop": 0.1})
                rows.append({"seed": seed, "task": task, "condition": matched_condition(1, method), "drop": matched[i]})
            rows.append({"seed": seed, "task": task, "condition": random_condition(1, 5), "drop": 0.02})
    cross = pd.DataFrame(
        [
            {
                "method": m,
                "masked": a,
                "measured": b,
                "seed": seed,
                "drop": (0.3 if a == b else 0.05) if specific else (0.1 if seed != 2 or a != b else 0.0),
            }  # fmt: skip
            for seed in (0, 1, 2)
            for m in (MASK, PROBE, CONTROL)
            for a in TASKS
            for b in TASKS
        ]
    )
    results = [
        SimpleNamespace(ablation=pd.DataFrame([r for r in rows if r["seed"] == s]), cross=cross[cross.seed == s])
        for s in (0, 1, 2)
    ]
    abl, by_seed, margins = ablation_statistics(results, 1, list(TASKS))
    cross, specificity, specificity_margins = specificity_tables(results, list(TASKS))
    overlap = pd.DataFrame(
        [
            {"method": m, "task a": a, "task b": b, "shared heads": 1.0 if a == b else 0.25}
            for m in (MASK, PROBE)
            for a in TASKS
            for b in TASKS
        ]  # fmt: skip
    )
    return SimpleNamespace(
        settings=settings,
        accuracy=accuracy,
        seed_table=seed_table,
        shares={PROBE: shares, MASK: shares},
        ablation_by_seed=by_seed,
        ablation_margins=margins,
        specificity=specificity,
        specificity_margins=specificity_margins,
        overlap=overlap,
        family_margins=family_margins(abl, 1, list(TASKS)),
    )


def test_findings_name_learned_families_and_the_math_verdict():
    from moe_utils.studies.head_importance.report import findings

    text = findings(tiny_head_tables())
    assert "not learned:\nMath Calculation" in text or "not learned: Math Calculation" in text.replace("\n", " ")
    assert text.count("**holds in every seed**") == 2 and "deeper than every other function in 3 of 3" in text
    assert "probe 50 %–50 %, head mask 50 %–50 %" in text.replace("\n", " ")
    flat = text.replace("\n", " ")
    assert "head-mask ranking +0.080 ± 0.000 (higher in 3 of 3 seeds)" in flat  # against random heads from all heads
    assert "more than its layers alone explain, in every seed" in flat and "**not** established" not in flat
    assert "difference +0.250 ± 0.000 (higher in 3 of 3 seeds) — specific" in flat
    assert "share on average head-mask gradient 0.2, probe gradient × activation 0.2 heads" in flat
    assert "format and function coincide" in flat and "format cue" not in flat
    assert "until it reached 0.6 or 3× STEPS (7,500 steps): 2 of 3 seeds reached it (2,500–7,500 steps trained)" in flat
    assert "went from 0.400 ± 0.173 after STEPS to 0.573 ± 0.064 at the end" in flat
    assert "seeds' spread 0.10 layers, so 80 % power needs a true difference ≥ 0.15 layers" in flat  # 1.46 std, 3 seeds
    assert "at the observed +0.50 its power is 100 %" in flat
    layers_only = findings(tiny_head_tables(beyond_layers=False)).replace("\n", " ")
    assert "**not** established beyond its layers (higher in 1 of 3 seeds)" in layers_only
    assert "head-mask gradient +0.50 layers [+0.25, +0.75]" in flat  # t-interval over the 3 seeds
    assert "Above 0 after Holm's adjustment over the 8 learned families in 8" in flat  # margin 0.08 in every seed
    general = findings(tiny_head_tables(specific=False)).replace("\n", " ")
    assert "— **not** specific in every seed" in general
    refuted = findings(tiny_head_tables(math_deeper=False))
    assert "**holds in every seed**" not in refuted and refuted.count("not supported in every seed") == 2
    assert "deeper than every other function in 2 of 3" in refuted


def test_the_cross_task_diagonal_masks_the_tasks_own_heads_and_the_controls_match_layers(data):
    from moe_utils.datasets.cognitive_tasks import TASKS, accuracy_by_task
    from moe_utils.measures.heads import top_heads_mask
    from moe_utils.studies.head_importance.method import (
        ablation_table,
        cross_task_table,
        masked_accuracy,
        matched_condition,
        random_condition,
    )

    _, held, _ = data
    model = tiny_model(1).eval()
    generator = torch.Generator().manual_seed(0)
    shares = {"a": torch.rand(8, 2, 4, generator=generator), "b": torch.rand(8, 2, 4, generator=generator)}
    cross = cross_task_table(model, held, shares, k=2)
    assert len(cross) == 2 * 8 * 8
    base = accuracy_by_task(model, held)
    for method, s in shares.items():
        for c, task in enumerate(TASKS):
            own = masked_accuracy(model, held, top_heads_mask(s[c], 2))  # the task's own top heads masked
            rows = cross[(cross.method == method) & (cross.masked == task)].set_index("measured")["drop"]
            assert np.allclose(rows.loc[list(TASKS)].to_numpy(), (base - own).to_numpy())
    ablation = ablation_table(model, held, shares, k=2, n_random=3)
    conditions = set(ablation.condition)
    assert {matched_condition(2, "a"), matched_condition(2, "b"), random_condition(2, 3)} <= conditions
    diagonal = cross[cross.masked == cross.measured].set_index(["method", "masked"])["drop"]
    for method in shares:
        top = ablation[ablation.condition == f"top-2 ({method})"].set_index("task")["drop"]
        assert np.allclose([diagonal[(method, t)] for t in TASKS], top.loc[list(TASKS)].to_numpy())
