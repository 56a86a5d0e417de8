"""The measures shared by our models and external ones (moe_utils.measures)."""

from __future__ import annotations

import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.measures.heads import (
    depth_centroid,
    importance_table,
    layer_matched_random_mask,
    mean_abs_by_task,
    relative_residual_update,
    specificity_summary,
    top_head_overlap,
    top_heads_mask,
)
from moe_utils.measures.routing import jaccard, pooled_jaccard, relative_load, selection_sets


def test_layer_matched_random_heads_have_the_top_heads_layer_histogram():
    shares = torch.rand(6, 8, generator=torch.Generator().manual_seed(0))
    shares[0, :3] += 5  # the top heads crowd into the first layers, as they do in notebook 06
    shares[1, :2] += 5
    top = top_heads_mask(shares, 5)
    generator = torch.Generator().manual_seed(1)
    draws = [layer_matched_random_mask(top, generator) for _ in range(20)]
    for mask in draws:
        assert torch.equal((mask == 0).sum(-1), (top == 0).sum(-1))
        assert not ((mask == 0) & (top == 0)).any()  # never a top head: drawn outside the top set


def test_layer_matched_random_heads_spill_outside_a_full_layer_and_never_hit_the_top_set():
    shares = torch.zeros(3, 4)
    shares[0] = 10  # every head of the first layer is a top head
    shares[1, 0] = 5
    top = top_heads_mask(shares, 5)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        mask = layer_matched_random_mask(top, generator)
        assert int((mask == 0).sum()) == 5 and not ((mask == 0) & (top == 0)).any()
        assert int((mask[1] == 0).sum()) >= 1  # layer 2's own draw is kept
    with pytest.raises(MoeError, match="too few heads"):
        layer_matched_random_mask(top_heads_mask(torch.rand(2, 2), 3), generator)


def test_accuracy_by_task_takes_the_argmax_over_each_familys_candidates():
    from moe_utils.datasets.cognitive_tasks import ANSWERS, TASKS, TaskSplit, accuracy_by_task

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, tokens):
            return self.logits[: len(tokens)][:, None].expand(-1, tokens.shape[1], -1)

    n = len(TASKS)
    logits = torch.full((n, 128), -5.0)
    logits[:, ord("!")] = 10.0  # a token no family answers with: the whole-vocabulary argmax
    answers = torch.tensor([ord(a[0]) for a in ANSWERS])
    logits[torch.arange(n), answers] = 1.0  # the right candidate beats the other candidates
    split = TaskSplit(torch.zeros(n, 4, dtype=torch.long), answers, torch.arange(n), [""] * n)
    assert (accuracy_by_task(Fixed(logits), split) == 1.0).all()


def test_specificity_compares_the_diagonal_with_the_rest():
    matrix = torch.tensor([[0.5, 0.1, 0.1], [0.0, 0.4, 0.2], [0.1, 0.1, 0.3]])
    summary = specificity_summary(matrix)
    assert summary["diagonal"] == pytest.approx(0.4)
    assert summary["off-diagonal"] == pytest.approx(0.6 / 6)
    assert summary["diagonal − off-diagonal"] == pytest.approx(0.3)
    with pytest.raises(MoeError, match="square"):
        specificity_summary(torch.zeros(2, 3))


def test_top_head_overlap_counts_shared_heads():
    shares = torch.zeros(2, 2, 3)
    shares[0].view(-1)[[0, 1]] = 1.0
    shares[1].view(-1)[[1, 2]] = 1.0
    overlap = top_head_overlap(shares, 2)
    assert overlap.tolist() == [[2, 1], [1, 2]]


def test_mean_abs_by_task_averages_each_task_only():
    values = torch.tensor([[[1.0]], [[-3.0]], [[5.0]]])
    out = mean_abs_by_task(values, torch.tensor([0, 0, 1]), 3)
    assert out.flatten().tolist() == [2.0, 5.0, 0.0]


def test_relative_residual_update_is_scale_free():
    x = torch.randn(4, 7, 16, generator=torch.Generator().manual_seed(0))
    y = x + 0.1 * torch.randn(4, 7, 16, generator=torch.Generator().manual_seed(1))
    assert relative_residual_update(x, y) == pytest.approx(relative_residual_update(10 * x, 10 * y), rel=1e-5)
    assert relative_residual_update(x, x) == 0.0


def test_routing_measures_below_both_model_kinds():
    sets = selection_sets(torch.tensor([[0, 1], [2, 3]]), 4)
    assert jaccard(sets, selection_sets(torch.tensor([[0, 2], [2, 3]]), 4)).tolist() == pytest.approx([1 / 3, 1.0])
    assert pooled_jaccard(torch.tensor([0.5, 1.0]), torch.tensor([1, 3])) == pytest.approx(0.875)
    assert relative_load(torch.tensor([[0, 1], [0, 1]]), 4).tolist() == [2.0, 2.0, 0.0, 0.0]


def test_depth_centroid_and_the_long_table_number_layers_and_heads_from_1():
    shares = torch.zeros(3, 4, 2)  # [maps, layers, heads]
    shares[0, 0, 1] = 1.0  # all in the first layer
    shares[1, 3] = 0.5  # all in the last
    shares[2, 1, 0] = shares[2, 2, 1] = 0.5  # half in layer 2, half in layer 3
    assert depth_centroid(shares).tolist() == pytest.approx([1.0, 4.0, 2.5])
    table = importance_table({"m": shares}, ["a", "b", "c"], "task")
    assert list(table.columns) == ["method", "task", "layer", "head", "share"]
    assert sorted(table["layer"].unique()) == [1, 2, 3, 4] and sorted(table["head"].unique()) == [1, 2]
    first = table[table["task"] == "a"]
    assert first.loc[first["share"].idxmax(), ["layer", "head"]].tolist() == [1, 2]


def test_within_across_overlap_is_the_mean_jaccard_of_top_sets_inside_and_across_groups():
    from moe_utils.measures.heads import within_across_overlap

    shares = torch.zeros(4, 1, 6)  # four labels, one layer of six heads; top-2 sets {0,1}, {0,2}, {3,4}, {3,5}
    for t, heads in enumerate([(0, 1), (0, 2), (3, 4), (3, 5)]):
        shares[t, 0, list(heads)] = torch.tensor([2.0, 1.0])
    out = within_across_overlap(shares, [0, 0, 1, 2], 2)
    assert set(out) == {0}  # groups 1 and 2 have one label each
    within, across = out[0]
    assert within == pytest.approx(1 / 3)  # {0,1} vs {0,2}: 1 shared of 3
    assert across == pytest.approx(0.0)
