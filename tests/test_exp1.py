"""exp1 (notebooks 01-03): gate studies, balancing, strategies, class routing, hard split, seeds and the Findings."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from toy_data import toy_split  # tests/toy_data.py

from moe_utils.datasets.mnist_cifar import CLASS_NAMES
from moe_utils.errors import MoeError
from moe_utils.exp1.expert_sweep import build_sweep, routing_summary
from moe_utils.exp1.gate_analysis import expert_order, gate_weight_distributions, weight_summary
from moe_utils.exp1.gate_balance import balance_extra_loss, balance_loss, cv_squared_loss, switch_balance_loss
from moe_utils.exp1.gate_strategies import experts_equal, gate_lr_groups, run_gate_strategies
from moe_utils.exp1.gating_stats import (
    align_experts,
    class_activation_rates,
    class_activation_rates_from_weights,
    majority_share,
)
from moe_utils.exp1.hard_split import Variant, classify_split, run_variant
from moe_utils.exp1.input_scaling import ScaledInput
from moe_utils.exp1.models import MLPExperts, build_experts, build_mixture
from moe_utils.exp1.routing_probe import RoutingProbe
from moe_utils.exp1.seed_study import claims_across_seeds, combine_seed_runs, final_accuracy_per_seed, train_four_models
from moe_utils.exp1.training import TrainConfig, train_models

# --- balancing losses -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_experts", [2, 4, 8])
def test_balancing_losses_are_minimal_for_a_uniform_gate(n_experts):
    uniform = torch.full((32, n_experts), 1.0 / n_experts)
    assert cv_squared_loss(uniform).item() == pytest.approx(0.0, abs=1e-12)
    assert switch_balance_loss(uniform).item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(n_experts)
    for _ in range(20):
        weights = torch.softmax(3 * torch.randn(32, n_experts, generator=g), -1)
        assert cv_squared_loss(weights) > 1e-4
        skewed = torch.softmax(
            torch.randn(32, n_experts, generator=g) + torch.eye(n_experts)[0] * 4, -1
        )  # most weight on expert 1
        assert switch_balance_loss(skewed) > 1.0 + 0.5 * (n_experts - 1) / n_experts


def test_balancing_losses_on_a_gate_that_sends_everything_to_one_expert():
    onehot = torch.tensor([[1.0, 0.0]] * 10)
    assert switch_balance_loss(onehot).item() == pytest.approx(2.0)  # N · f_1 P_1 = 2 · 1 · 1
    assert cv_squared_loss(onehot).item() == pytest.approx(1.0)  # importance (10, 0): var 25 / mean² 25


def test_switch_loss_gradient_flows_through_the_mean_gate_probability_only():
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    switch_balance_loss(torch.softmax(logits, -1)).backward()
    assert logits.grad.abs().sum() > 0
    f = torch.tensor([2 / 3, 1 / 3])
    p = torch.softmax(logits.detach(), -1).mean(0)
    assert switch_balance_loss(torch.softmax(logits.detach(), -1)).item() == pytest.approx(2 * (f * p).sum().item())


def test_balance_extra_loss_applies_only_to_named_models():
    model = build_mixture("linear", seed=0)
    x, is_first = torch.rand(8, 1024), torch.ones(8, dtype=torch.bool)
    extra = balance_extra_loss({"balanced": ("cv2", 0.5)})
    assert extra("plain", model, x, is_first).item() == 0.0
    expected = 0.5 * cv_squared_loss(model.gate_log_weights(x, is_first).exp())
    torch.testing.assert_close(extra("balanced", model, x, is_first), expected)


def test_balancing_term_balances_the_gate():
    train, test = toy_split(512, 0), toy_split(64, 1)
    config = TrainConfig(epochs=3, batch_size=64, lr=1e-2, seed=0)
    models = {"plain": build_mixture("linear", seed=3), "balanced": build_mixture("linear", seed=3)}
    with torch.no_grad():  # start from a gate that prefers expert 1 for every input
        for m in models.values():
            m.gate.linear.bias.copy_(torch.tensor([2.0, -2.0]))
    train_models(models, train, test, config, extra_loss=balance_extra_loss({"balanced": ("cv2", 5.0)}), progress=False)
    x = train.images.float() / 255
    cv = {name: cv_squared_loss(m.gate_log_weights(x, train.is_first).exp()).item() for name, m in models.items()}
    assert cv["balanced"] < 0.5 * cv["plain"], cv


# --- gate learning strategies -----------------------------------------------------------------------------------


def test_gate_lr_groups_scale_only_the_gate():
    model = build_mixture("mlp", seed=0)
    groups = gate_lr_groups(model, 1e-3, 10)
    assert groups[0]["lr"] == 1e-3 and groups[1]["lr"] == pytest.approx(1e-2)
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.gate.parameters()}
    with pytest.raises(MoeError, match="GATE_LR_FACTOR=0"):
        gate_lr_groups(model, 1e-3, 0)


def test_frozen_expert_strategy_keeps_pre_trained_experts_and_trains_the_gate():
    train, test = toy_split(256, 2), toy_split(64, 3)
    config = TrainConfig(epochs=2, batch_size=32, lr=1e-2, seed=0)
    history, models = run_gate_strategies(
        train,
        test,
        config,
        gates={"linear gate": "linear"},
        balance={"balance cv²": ("cv2", 0.1)},
        lr_factors=[0.1, 10],
        seed=0,
    )
    pre = models["pre-designed gate"]
    frozen = models["linear gate | frozen experts"]
    assert experts_equal(frozen, pre)  # experts copied from the pre-trained pre-designed model and left unchanged
    assert not experts_equal(models["linear gate | joint"], pre)
    untrained = build_mixture("linear", seed=1)  # the common starting point of every linear-gate strategy
    assert not torch.equal(frozen.gate.linear.weight, untrained.gate.linear.weight)
    assert not torch.equal(frozen.experts.weight, untrained.experts.weight)
    assert set(history["strategy"]) == {
        "pre-training",
        "joint",
        "balance cv²",
        "gate lr ×0.1",
        "gate lr ×10",
        "frozen experts",
    }
    assert len(history) == (1 + 5) * 2 * 2  # (pre-designed + 5 strategies) × epochs × splits


def test_gate_lr_factor_changes_only_how_fast_the_gate_moves():
    train, test = toy_split(128, 4), toy_split(32, 5)
    config = TrainConfig(epochs=1, batch_size=32, lr=1e-3, seed=0)
    _, models = run_gate_strategies(
        train, test, config, gates={"g": "linear"}, balance={}, lr_factors=[0.1, 10], seed=5
    )
    start = build_mixture("linear", seed=6).gate.linear.weight
    moved = {f: (models[f"g | gate lr ×{f:g}"].gate.linear.weight - start).abs().mean().item() for f in (0.1, 10)}
    assert moved[10] > 5 * moved[0.1], moved


# --- routing statistics -----------------------------------------------------------------------------------------


def test_per_class_rates_on_hand_made_batch_sum_to_one():
    weights = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 12, 12])
    table = class_activation_rates_from_weights(weights, labels, 20)
    torch.testing.assert_close(table[0], torch.tensor([0.8, 0.2]))
    torch.testing.assert_close(table[12], torch.tensor([0.1, 0.9]))
    assert torch.isnan(table[1]).all()  # a class with no rows has no rate


@pytest.mark.parametrize("gate, n_experts", [("linear", 2), ("mlp", 4), ("pre_designed", 2)])
def test_per_class_rates_of_models_sum_to_one_over_experts(gate, n_experts):
    split = toy_split(400, 6)
    models = {"m": build_mixture(gate, n_experts, "linear", seed=0)}
    rates = class_activation_rates(models, split, CLASS_NAMES)
    assert len(rates) == 20 * n_experts
    sums = rates.groupby("class")["rate"].sum()
    assert sums.sub(1).abs().max() < 1e-5
    if gate == "pre_designed":
        mnist = rates[rates["class"] < 10].set_index(["class", "expert"])["rate"]
        assert (mnist.xs(1, level="expert") == 1).all() and (mnist.xs(2, level="expert") == 0).all()


def rates_frame(model, mnist, cifar):
    return pd.DataFrame(
        [
            {"model": model, "split": s, "dataset": d, "expert": e + 1, "rate": r}
            for s in ("train", "test")
            for d, rr in (("MNIST", mnist), ("CIFAR", cifar))
            for e, r in enumerate(rr)
        ]
    )


def test_align_experts_swaps_only_when_expert_2_has_more_mnist():
    rates = pd.concat(
        [rates_frame("a", (0.3, 0.7), (0.9, 0.1)), rates_frame("b", (0.8, 0.2), (0.1, 0.9))], ignore_index=True
    )
    aligned = align_experts(rates).set_index(["model", "split", "dataset", "expert"])["rate"]
    assert aligned[("a", "test", "MNIST", 1)] == 0.7 and aligned[("a", "test", "CIFAR", 1)] == 0.1  # swapped
    assert aligned[("a", "train", "CIFAR", 2)] == 0.9
    assert aligned[("b", "test", "MNIST", 1)] == 0.8 and aligned[("b", "test", "CIFAR", 2)] == 0.9  # kept
    assert len(aligned) == len(rates)


def test_align_experts_orders_many_experts_by_mnist_share():
    rates = rates_frame("m", (0.1, 0.6, 0.3), (0.5, 0.2, 0.3))
    aligned = align_experts(rates).set_index(["split", "dataset", "expert"])["rate"]
    assert [aligned[("train", "MNIST", e)] for e in (1, 2, 3)] == [0.6, 0.3, 0.1]
    assert [aligned[("test", "CIFAR", e)] for e in (1, 2, 3)] == [0.2, 0.3, 0.5]


def test_expert_order_and_weight_summary():
    weights = torch.tensor([[0.2, 0.8], [0.05, 0.95], [0.5, 0.5], [0.99, 0.01]])
    is_first = torch.tensor([True, True, False, False])
    assert expert_order(weights, is_first).tolist() == [1, 0]
    summary = weight_summary(weights[is_first][:, [1, 0]])
    assert summary["activation_rate_e1"] == pytest.approx(0.875)
    assert summary["frac_max_gt_0.9"] == pytest.approx(0.5)


def test_gate_weight_distributions_skip_fixed_gates_and_sum_to_one():
    split = toy_split(300, 7)
    models = {
        "pre": build_mixture("pre_designed", seed=0),
        "lin": build_mixture("linear", seed=1),
        "mlp": build_mixture("mlp", seed=2),
    }
    hist, summary = gate_weight_distributions(models, {"train": split, "test": split}, bins=10)
    assert set(hist["model"]) == {"lin", "mlp"}
    assert hist.groupby(["model", "split", "dataset"])["share"].sum().sub(1).abs().max() < 1e-9
    assert (summary.groupby(["model", "dataset"])["activation_rate_e1"].nunique() == 1).all()  # same split twice
    mnist_rate = summary[(summary["dataset"] == "MNIST")].set_index("model")["activation_rate_e1"]
    assert (mnist_rate >= 0.5).all()  # expert 1 is the MNIST-heavy one after alignment


def test_majority_share_and_split_classification():
    rates = pd.concat(
        [
            rates_frame("seed-like", (0.6, 0.4), (0.01, 0.99)).assign(variant="v"),
            rates_frame("collapsed", (1.0, 0.0), (0.995, 0.005)).assign(variant="v"),
            rates_frame("separated", (0.99, 0.01), (0.0, 1.0)).assign(variant="v"),
            rates_frame("soft", (0.6, 0.4), (0.3, 0.7)).assign(variant="v"),
        ],
        ignore_index=True,
    )
    majority = majority_share(rates)
    row = majority[
        (majority["model"] == "seed-like") & (majority["dataset"] == "CIFAR") & (majority["split"] == "test")
    ].iloc[0]
    assert row["majority_share"] == 0.99 and row["majority_expert"] == 2
    kinds = classify_split(majority).set_index("model")["split_kind"]
    assert kinds.to_dict() == {
        "seed-like": "hard CIFAR, shared MNIST",
        "collapsed": "collapsed to one expert",
        "separated": "datasets separated",
        "soft": "soft",
    }


def test_routing_summary_counts_experts_in_use():
    rates = rates_frame("m", (0.5, 0.47, 0.03), (0.0, 0.0, 1.0))
    summary = routing_summary(rates).set_index(["split", "dataset"])
    assert (
        summary.loc[("test", "MNIST"), "experts_used"] == 2 and summary.loc[("test", "CIFAR"), "majority_share"] == 1.0
    )


def test_routing_probe_records_every_epoch_and_matches_a_fixed_gate():
    train, test = toy_split(100, 8), toy_split(20, 9)
    probe = RoutingProbe(len(train), 32)
    models = {"pre": build_mixture("pre_designed", seed=0), "lin": build_mixture("linear", seed=1)}
    train_models(models, train, test, TrainConfig(epochs=3, batch_size=32), extra_loss=probe, progress=False)
    rates = probe.rates()
    assert sorted(rates["epoch"].unique()) == [1, 2, 3]
    pre = rates[rates["model"] == "pre"].set_index(["epoch", "dataset", "expert"])["rate"]
    assert pre[(2, "MNIST", 1)] == 1.0 and pre[(2, "CIFAR", 1)] == 0.0
    assert rates.groupby(["model", "epoch", "dataset"])["rate"].sum().sub(1).abs().max() < 1e-5


# --- models -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_experts, init", [(1, "tf"), (3, "tf"), (8, "torch")])
def test_mlp_experts_shapes_and_normalised_log_probs(n_experts, init):
    experts = MLPExperts(n_experts, init=init)
    x = torch.rand(5, 1024)
    log_p = experts(x)
    assert log_p.shape == (5, n_experts, 20)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(5, n_experts))
    assert sum(p.numel() for p in experts.parameters()) == n_experts * (1024 * 64 + 64 + 64 * 20 + 20)
    assert (torch.count_nonzero(experts.bias1) == 0) == (init == "tf")


def test_mlp_experts_are_independent_and_match_a_plain_mlp():
    experts = MLPExperts(3)
    x = torch.rand(4, 1024)
    before = experts(x)
    with torch.no_grad():
        experts.weight1.view(3, 64, 1024)[1].mul_(3.0)
    after = experts(x)
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert not torch.allclose(after[:, 1], before[:, 1])
    w1, b1 = experts.weight1.view(3, 64, 1024)[2], experts.bias1.view(3, 64)[2]
    plain = torch.log_softmax(torch.relu(x @ w1.T + b1) @ experts.weight2[2].T + experts.bias2[2], -1)
    torch.testing.assert_close(after[:, 2], plain)


def test_mixture_with_mlp_experts_trains_and_rejects_bad_kind():
    model = build_mixture("linear", 4, "mlp", seed=0)
    assert isinstance(model.experts, MLPExperts) and model.gate.n_experts == 4
    x, is_first = torch.rand(6, 1024), torch.zeros(6, dtype=torch.bool)
    torch.testing.assert_close(model(x, is_first).exp().sum(-1), torch.ones(6))
    with pytest.raises(MoeError, match="EXPERTS='cnn' is not allowed"):
        build_experts("cnn")
    with pytest.raises(MoeError, match="N_EXPERTS=0"):
        MLPExperts(0)


def test_scaled_input_feeds_scaled_pixels():
    model = build_mixture("linear", seed=0)
    wrapped = ScaledInput(model, 255.0)
    x, is_first = torch.rand(4, 1024), torch.ones(4, dtype=torch.bool)
    torch.testing.assert_close(wrapped(x, is_first), model(255 * x, is_first))
    torch.testing.assert_close(wrapped.gate_log_weights(x, is_first), model.gate_log_weights(255 * x, is_first))
    assert wrapped.experts is model.experts
    with pytest.raises(MoeError, match="SCALE=0"):
        ScaledInput(model, 0)


def test_sweep_builds_the_grid_with_distinct_initialisations():
    models, grid = build_sweep([2, 4], ["linear", "mlp"], ["linear", "mlp"], seed=0)
    assert len(models) == 8 and set(grid["n_experts"]) == {2, 4}
    first = models["2 linear experts, linear gate"]
    assert first.experts.n_experts == 2 and isinstance(models["4 mlp experts, mlp gate"].experts, MLPExperts)
    assert not torch.equal(first.experts.weight, models["2 linear experts, mlp gate"].experts.weight)


# --- hard split and seeds ---------------------------------------------------------------------------------------


def test_variant_rejects_bad_values():
    with pytest.raises(MoeError, match="INIT='keras'"):
        Variant("x", init="keras")
    with pytest.raises(MoeError, match="OPTIMIZER='rmsprop'"):
        Variant("x", optimizer="rmsprop")
    with pytest.raises(MoeError, match="BALANCE='l2'"):
        balance_loss(torch.ones(2, 2) / 2, "l2")


def test_run_variant_returns_rates_and_epoch_routing():
    train, test = toy_split(128, 10), toy_split(32, 11)
    out = run_variant(
        Variant("raw", scale=255.0), train, test, TrainConfig(epochs=2, batch_size=32), ["linear", "mlp"], seed=0
    )
    assert set(out["accuracy"]["model"]) == {"linear gate", "1-hidden-layer gate"}
    assert sorted(out["by_epoch"]["epoch"].unique()) == [1, 2]
    rates = out["rates"].groupby(["model", "split", "dataset"])["rate"].max().rename("largest rate").reset_index()
    majority = out["majority"].merge(rates, on=["model", "split", "dataset"])
    assert len(majority) == 8 and (majority["majority_share"] - majority["largest rate"]).abs().max() < 1e-12


def test_seed_runs_align_experts_and_claims_count_the_holding_seeds():
    train, test = toy_split(256, 12), toy_split(64, 13)
    config = TrainConfig(epochs=1, batch_size=64, lr=1e-2)
    runs = combine_seed_runs([train_four_models(train, test, config, seed=s) for s in (0, 1)])
    assert set(runs.history["seed"]) == {0, 1} and set(runs.models) == {0, 1}
    train_mnist = runs.rates[(runs.rates["split"] == "train") & (runs.rates["dataset"] == "MNIST")]
    wide = train_mnist.pivot_table(index=["model", "seed"], columns="expert", values="rate")
    assert (wide[1] >= wide[2]).all()  # expert 1 = larger MNIST share, for every model and seed
    assert set(runs.routing_by_epoch["model"]) == {"pre-designed gate", "linear gate", "1-hidden-layer gate"}
    models = ["single expert", "pre-designed gate", "linear gate", "1-hidden-layer gate"]
    finals = pd.DataFrame(
        {
            "model": models * 2,
            "seed": [0] * 4 + [1] * 4,
            "train": 0.7,
            "test": [0.60, 0.61, 0.63, 0.59, 0.60, 0.59, 0.58, 0.62],
        }
    )
    claims = claims_across_seeds(final_accuracy_per_seed(runs.history)).set_index("claim (test accuracy)")
    assert (claims["seeds"] == 2).all()
    hand = claims_across_seeds(finals).set_index("claim (test accuracy)")
    assert hand.loc["linear gate > pre-designed gate", "holds_in"] == 1  # +0.02 in seed 0, −0.01 in seed 1
    assert hand.loc["pre-designed gate > single expert", "holds_in"] == 1
    assert hand.loc["best learned gate > single expert", "holds_in"] == 2
    assert hand.loc["linear gate > pre-designed gate", "margin_mean"] == pytest.approx(0.005)


class FakeData:
    """The parts of MnistCifar that the Findings read."""

    def __init__(self, source_data: bool = True):
        self.is_source_data, self.dataset_names, self.source = source_data, ("MNIST", "CIFAR"), "mirror"
        self.n_first, self.n_classes = 10, 20

    def describe(self) -> str:
        return "the test's data"


def test_data_findings_count_images_and_compare_pixels():
    from types import SimpleNamespace

    from moe_utils.studies.data_setup.report import findings as data_findings

    counts = pd.DataFrame(
        {"class": range(20), "name": list("abcdefghijklmnopqrst"), "train": [6] * 10 + [5] * 10, "test": [1] * 20}
    )
    totals = pd.DataFrame(
        {"train": {"MNIST": 60, "CIFAR": 50, "total": 110}, "test": {"MNIST": 10, "CIFAR": 10, "total": 20}}
    )
    stats = pd.DataFrame(
        [
            {"split": "train", "dataset": d, "mean": m, "share of zero pixels": z}
            for d, m, z in (("MNIST", 33.4, 0.75), ("CIFAR", 122.6, 0.001))
        ]
    )
    text = data_findings(SimpleNamespace(data=FakeData(), counts=counts, totals=totals, stats=stats))
    assert text.startswith("The cache holds 130 images: 110 train (60 MNIST + 50 CIFAR) and 20 test.")
    assert (
        "MNIST has 6–6 train images and CIFAR 5–5" in text and "75 % of MNIST's" in text and "0.1 % of CIFAR's" in text
    )


def four_model_tables(source_data: bool):
    from types import SimpleNamespace

    from moe_utils.exp1.summary import claim_checks, rates_beside_source
    from moe_utils.studies.four_models.settings import FourModelsSettings

    final = pd.DataFrame(
        {
            "model": ["single expert", "pre-designed gate", "linear gate", "1-hidden-layer gate"],
            "train": [0.6, 0.6, 0.7, 0.7],
            "test": [0.60, 0.59, 0.62, 0.61],
        }
    )
    rates = pd.DataFrame(
        [
            {"model": m, "split": sp, "dataset": d, "expert": e, "rate": 0.5}
            for m in ("pre-designed gate", "linear gate", "1-hidden-layer gate")
            for sp in ("train", "test")
            for d in ("MNIST", "CIFAR")
            for e in (1, 2)
        ]
    )
    return SimpleNamespace(
        settings=FourModelsSettings(),
        data=FakeData(source_data),
        final=final,
        claims=claim_checks(final),
        rates=rates,
        compared=rates_beside_source(rates, source_data=source_data),
    )


def test_four_model_findings_check_the_claims_and_compare_rates_only_on_the_source_data():
    from moe_utils.studies.four_models.report import findings as four_models_findings

    text = four_models_findings(four_model_tables(True)).replace("\n", " ")
    assert "*pre-designed gate > single expert* does **not** hold (−1.00 points)" in text
    assert "*linear gate > pre-designed gate* holds (+3.00 points)" in text
    assert "Linear gate: MNIST 0.50 / 0.50 (0.63 / 0.37)" in text  # source 004's rates in brackets
    other = four_models_findings(four_model_tables(False))
    assert "see the table above" in other and "(0.63 / 0.37)" not in other and "004" not in other


def hard_split_tables(later_share: float, source_data: bool = True):
    from types import SimpleNamespace

    from moe_utils.studies.gate_analysis.job import VARIANTS
    from moe_utils.studies.gate_analysis.settings import GateAnalysisSettings

    t = SimpleNamespace()
    t.settings, t.splits = (
        GateAnalysisSettings(n_seeds=2, hard_split_seeds=1),
        SimpleNamespace(data=FakeData(source_data)),
    )
    t.seed_kinds = pd.DataFrame(
        {"model": ["linear gate", "1-hidden-layer gate"] * 2, "cifar_majority": [0.99, 0.5, 0.96, 0.98]}
    )
    t.hard_summary = pd.DataFrame(
        [
            {
                "variant": v.name,
                "model": m,
                "seed_like": 1,
                "runs": 1,
                "cifar_majority_mean": 0.9,
                "test_accuracy_mean": 0.6,
            }
            for v in VARIANTS
            for m in ("linear gate", "1-hidden-layer gate")
        ]
    )
    t.by_epoch = pd.DataFrame(
        [
            {
                "variant": "02 setting, full data (study 5, 2 seeds)",
                "dataset": "CIFAR",
                "model": m,
                "epoch": e,
                "majority_share": 0.8 if e == 1 else later_share,
            }
            for m in ("linear gate", "1-hidden-layer gate")
            for e in (1, 2)
        ]
    )
    return t


def test_hard_split_lines_say_whether_epochs_harden_the_split_and_quote_the_source_only_on_its_data():
    from moe_utils.studies.gate_analysis.report import claim_line, hard_split_lines

    text = hard_split_lines(hard_split_tables(later_share=0.8)).replace("\n", " ")
    assert (
        "≥ 0.97 in 1 of 2 seeds for the 1-hidden-layer gate and 1 of 2 for the linear gate (source 004 reports" in text
    )
    assert "more epochs do not make the split harder" in text and "linear gate 0.80 → 0.80" in text
    harder = hard_split_lines(hard_split_tables(later_share=0.95, source_data=False)).replace("\n", " ")
    assert "harden the split in at least one gate" in harder and "source 004 reports" not in harder
    claims = pd.DataFrame(
        [
            {
                "claim (test accuracy)": "a > b",
                "holds_in": 4,
                "seeds": 5,
                "margin_mean": 0.012,
                "margin_std": 0.004,
                "margin_min": -0.001,
            }
        ]
    )
    assert claim_line(claims, "a > b") == "4 of 5 seeds (+1.2 ± 0.4 points, min −0.1)"
