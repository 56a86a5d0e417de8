"""exp1.training and exp1.gating_stats: the shared tensor-batch training loop and the activation-rate statistics."""

from __future__ import annotations

import pytest
import torch
from toy_data import toy_split  # tests/toy_data.py

from moe_utils.errors import MoeError
from moe_utils.exp1.gating_stats import activation_rates, activation_rates_from_weights
from moe_utils.exp1.models import build_four_models, build_mixture
from moe_utils.exp1.training import TrainConfig, accuracy, train_models


def test_training_learns_and_records_every_epoch():
    train, test = toy_split(600, 0), toy_split(200, 1)
    models = build_four_models(seed=0)
    before = {name: accuracy(m, test) for name, m in models.items()}
    history = train_models(models, train, test, TrainConfig(epochs=3, batch_size=32, lr=1e-2), progress=False)
    assert len(history) == 4 * 3 * 2
    last = history[history.epoch == 3].set_index(["model", "split"])["accuracy"]
    for name in models:
        assert last[(name, "test")] > max(0.5, before[name] + 0.2), (name, last[(name, "test")])


def test_joint_step_equals_training_each_model_alone():
    train, test = toy_split(256, 2), toy_split(64, 3)
    config = TrainConfig(epochs=2, batch_size=32, lr=1e-2, seed=7)
    together = build_four_models(seed=1)
    train_models(together, train, test, config, progress=False)
    for name in together:
        alone = {name: build_four_models(seed=1)[name]}
        train_models(alone, train, test, config, progress=False)
        for p_joint, p_alone in zip(together[name].parameters(), alone[name].parameters()):
            torch.testing.assert_close(p_joint, p_alone, rtol=1e-5, atol=1e-6)


def test_frozen_parameters_stay_unchanged():
    train, test = toy_split(128, 4), toy_split(32, 5)
    model = build_mixture("linear", seed=0)
    model.experts.requires_grad_(False)
    frozen = model.experts.weight.clone()
    train_models({"m": model}, train, test, TrainConfig(epochs=1, batch_size=32), progress=False)
    assert torch.equal(model.experts.weight, frozen)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "EPOCHS=0 is not allowed; it must be a positive integer"),
        ({"epochs": -3}, "EPOCHS=-3"),
        ({"batch_size": 1.5}, "BATCH_SIZE=1.5"),
        ({"lr": 0}, "LR=0"),
        ({"optimizer": "rmsprop"}, "OPTIMIZER='rmsprop' is not allowed; choose one of 'adam', 'sgd'"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(MoeError, match=message):
        TrainConfig(**kwargs)


def test_activation_rates_on_hand_made_batch():
    weights = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.0, 1.0]])
    is_first = torch.tensor([True, True, False, False])
    rates = activation_rates_from_weights(weights, is_first).set_index(["dataset", "expert"])["rate"]
    assert rates[("MNIST", 1)] == pytest.approx(0.8) and rates[("MNIST", 2)] == pytest.approx(0.2)
    assert rates[("CIFAR", 1)] == pytest.approx(0.1) and rates[("CIFAR", 2)] == pytest.approx(0.9)


def test_pre_designed_rates_are_exactly_one_and_zero():
    split = toy_split(50, 6)
    models = build_four_models(seed=0)
    rates = activation_rates(models, {"train": split})
    pre = rates[rates.model == "pre-designed gate"].set_index(["dataset", "expert"])["rate"]
    assert (
        pre[("MNIST", 1)] == 1.0 and pre[("MNIST", 2)] == 0.0 and pre[("CIFAR", 1)] == 0.0 and pre[("CIFAR", 2)] == 1.0
    )
    assert "single expert" not in set(rates.model)
    sums = rates.groupby(["model", "split", "dataset"])["rate"].sum()
    assert sums.sub(1).abs().max() < 1e-6


def test_a_diverging_run_stops_with_one_line_naming_lr_and_the_epoch():
    train, test = toy_split(200, 0), toy_split(50, 1)
    models = build_four_models(seed=0)
    config = TrainConfig(epochs=3, batch_size=32, lr=1e30, optimizer="sgd")
    with pytest.raises(MoeError) as err:
        train_models(models, train, test, config, progress=False)
    message = str(err.value)
    assert message.startswith("training diverged: the loss of ") and "in epoch 1 of 3 (LR=1e+30" in message
    assert "\n" not in message
