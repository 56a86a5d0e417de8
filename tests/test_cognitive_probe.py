"""The probe of Cognitive Mirrors as its code does it: features, gradient × activation against a hand computation,
the elbow cut on a known curve, random heads outside the top set, accuracy over each item's candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.measures.cognitive_probe import (
    FeatureProbe,
    candidate_accuracy,
    elbow_index,
    feature_importance,
    head_features,
    random_heads_outside,
    train_feature_probe,
)


def test_head_features_average_the_answer_tokens_and_append_the_layer_mean():
    heads = torch.arange(2 * 3 * 2 * 1, dtype=torch.float).view(2, 3, 2, 1)  # [L, T, H, D]
    got = head_features(heads, [1, 2, 7])  # token 7 is outside the item: dropped, as the paper's code does
    # layer 0: head 0 tokens 1,2 -> (2 + 4) / 2 = 3; head 1 -> (3 + 5) / 2 = 4; layer mean 3.5
    # layer 1: head 0 -> (8 + 10) / 2 = 9; head 1 -> 10; layer mean 9.5
    assert got.tolist() == [[3, 3.5], [4, 3.5], [9, 9.5], [10, 9.5]]
    assert head_features(heads, [0], layer_bias=False).shape == (4, 1)
    with pytest.raises(MoeError, match="selects none"):
        head_features(heads, [9])


def test_gradient_times_activation_matches_a_hand_computation():
    torch.manual_seed(0)
    probe = FeatureProbe(input_dim=3, n_features=2, n_classes=2)
    x = torch.rand(4, 2, 3)
    y = torch.tensor([0, 1, 1, 0])
    got = feature_importance(probe, x, y, 2)
    a, b = probe.feature_proj.weight.detach().numpy(), probe.feature_proj.bias.detach().numpy()
    w1, b1 = probe.classifier[0].weight.detach().numpy(), probe.classifier[0].bias.detach().numpy()
    w2 = probe.classifier[3].weight.detach().numpy()
    want = np.zeros((2, 2))
    for c in range(2):
        rows = []
        for item in x[y == c].numpy():
            p = item @ a.T + b  # [features, 64]
            h = w1 @ p.reshape(-1) + b1
            grad = ((w2[c] * (h > 0)) @ w1).reshape(p.shape)  # d logit_c / d p through the ReLU
            rows.append((grad * p).mean(-1))
        want[c] = np.mean(rows, 0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def test_a_trained_probe_learns_a_separable_toy_task():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 3, 4, generator=g)
    x[:, 1, 0] += 3 * (2 * y - 1)  # feature 1 carries the label
    probe = train_feature_probe(x, y, 2, epochs=60, lr=1e-2, batch_size=8)
    assert (probe(x).argmax(1) == y).float().mean() == 1.0
    importance = feature_importance(probe, x, y, 2).abs().sum(0)
    assert int(importance.argmax()) == 1


def test_the_elbow_is_the_knee_of_a_known_curve():
    curve = [10, 8, 6, 4, 3.8, 3.6, 3.4, 3.2, 3.0]  # steep to index 3, then flat
    assert elbow_index(curve) == 3
    assert elbow_index([5, 1, 0.9, 0.8]) == 1
    with pytest.raises(MoeError):
        elbow_index([1.0])


@pytest.mark.parametrize("layer_matched", [False, True])
def test_random_heads_never_meet_the_top_set(layer_matched):
    top = [0, 5, 6, 13]
    for seed in range(200):
        drawn = random_heads_outside(top, 4, 4, torch.Generator().manual_seed(seed), layer_matched)
        assert len(drawn) == len(top) == len(set(drawn)) and not set(drawn) & set(top)
        if layer_matched:
            assert [h // 4 for h in drawn] == [h // 4 for h in top]
    with pytest.raises(MoeError, match="no head outside"):
        random_heads_outside([0, 1], 1, 2, torch.Generator(), layer_matched=True)
    spilled = random_heads_outside([0, 1], 2, 2, torch.Generator(), layer_matched=True)  # layer 1 is all top heads
    assert sorted(spilled) == [2, 3]  # drawn outside the top set elsewhere, never a top head


def test_candidate_accuracy_equals_a_brute_force_reference():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(50, 4, generator=g)
    n = torch.randint(2, 5, (50,), generator=g)
    correct = torch.stack([torch.randint(int(k), (1,), generator=g)[0] for k in n])
    hits = 0
    for i, k in enumerate(n.tolist()):
        best = max(range(k), key=lambda j: float(scores[i, j]))  # only the item's own candidates
        hits += best == int(correct[i])
    assert candidate_accuracy(scores, correct, n) == pytest.approx(hits / 50)
    assert candidate_accuracy(torch.tensor([[0.0, 9.0]]), torch.tensor([0]), torch.tensor([1])) == 1.0
