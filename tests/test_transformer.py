"""Transformer: head masks, recorded head outputs, causality, patches, training loop and checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch
from configs import make_config  # tests/configs.py
from torch.nn import functional as F

from moe_utils.errors import MoeError
from moe_utils.measures.heads import masked_heads
from moe_utils.measures.hooks import per_head, record
from moe_utils.moe.layer import DenseFeedForward, MoEFeedForward
from moe_utils.moe.training import load_checkpoint, save_checkpoint, train_steps
from moe_utils.moe.transformer import TransformerModel, image_to_patches

SMALL = dict(d_model=16, n_heads=4, n_layers=2, d_ff=32, d_expert=8, n_experts=4, top_k=2, max_len=16)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def lm(**overrides) -> TransformerModel:
    return TransformerModel(make_config(**(SMALL | {"causal": True} | overrides)), input="tokens", head="lm")


def classifier(**overrides) -> TransformerModel:
    config = make_config(**(SMALL | overrides))
    return TransformerModel(config, input="patches", patch_dim=16, head="classifier", n_classes=3)


def tokens(batch=2, seq=6, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (batch, seq), generator=gen(seed))


def test_shapes_and_layer_lists():
    model = lm()
    assert model(tokens()).shape == (2, 6, 256)
    assert len(model.moe_layers) == 2 and all(isinstance(m, MoEFeedForward) for m in model.moe_layers)
    patches = image_to_patches(torch.randint(0, 256, (5, 8, 8), dtype=torch.uint8, generator=gen(1)))
    dense = classifier(ffn="dense")
    assert dense(patches).shape == (5, 3)
    assert dense.moe_layers == [] and isinstance(dense.blocks[0].ffn, DenseFeedForward)
    assert dense.aux_loss([]).item() == 0.0 and dense.routers() == []


def test_head_mask_of_ones_is_identity_and_hooks_leave_no_trace():
    model = lm().eval()
    x = tokens()
    with masked_heads(model, torch.ones(2, 4)):
        masked = model(x)
    assert torch.equal(masked, model(x))
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())  # removed on exit


@pytest.mark.parametrize("layer, head", [(0, 1), (1, 3)])
def test_zero_mask_equals_zeroing_the_head_output(layer, head):
    model = lm().eval()
    x = tokens()
    mask = torch.ones(2, 4)
    mask[layer, head] = 0.0
    cut = copy.deepcopy(model)
    d_head = 16 // 4
    with torch.no_grad():  # the head's output only enters through its columns of the output projection
        cut.blocks[layer].attn.out.weight[:, head * d_head : (head + 1) * d_head] = 0.0
    with masked_heads(model, mask):
        masked = model(x)
    torch.testing.assert_close(masked, cut(x))
    assert not torch.allclose(masked, model(x))


def test_head_mask_gradient_equals_gradient_times_activation():
    model = classifier()
    patches = torch.rand(3, 4, 16, generator=gen(2))
    mask = torch.ones(2, 4, requires_grad=True)
    with per_head(model.output_projections(), 4, mask=mask, keep_grad=True) as recorded:
        logits = model.eval()(patches)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for i, (heads,) in enumerate(recorded):
        assert heads.shape == (3, 4, 4, 4)  # [B, S, H, d_head]
        assert heads.grad is not None
        torch.testing.assert_close(mask.grad[i], (heads.grad * heads).sum((0, 1, 3)))


def test_causal_lm_does_not_look_ahead():
    model = lm().eval()
    x = tokens(seq=8)
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 256
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_image_to_patches_layout():
    images = torch.arange(2 * 8 * 12, dtype=torch.uint8).view(2, 8, 12)
    patches = image_to_patches(images, patch=4)
    assert patches.shape == (2, 6, 16)
    torch.testing.assert_close(patches[1, 4], images[1, 4:8, 4:8].flatten().float() / 255)  # row 1, column 1
    assert image_to_patches(torch.zeros(2, 3, 8, 8)).shape == (2, 4, 48)
    with pytest.raises(MoeError, match="patch"):
        image_to_patches(images, patch=5)


def test_aux_loss_sums_layers_and_biases_update_only_when_aux_free():
    model = lm(balancing="aux_loss", aux_loss_alpha=0.1)
    with record(model.routers()) as seen:
        model(tokens())
    routings = [seen.output(i) for i in range(len(model.moe_layers))]
    expected = sum(r.aux_loss for r in routings)
    torch.testing.assert_close(model.aux_loss(routings), expected)
    assert model.aux_loss(routings).item() > 0
    model.update_router_biases(routings)
    assert all(layer.router.expert_bias.abs().sum() == 0 for layer in model.moe_layers)
    free = lm(balancing="aux_free")
    with record(free.routers()) as seen:
        free(tokens())
    free.update_router_biases([seen.output(i) for i in range(len(free.moe_layers))])
    assert all(layer.router.expert_bias.abs().sum() > 0 for layer in free.moe_layers)


def lm_loss(model, batch, generator):
    logits = model(batch[:, :-1], generator=generator)
    return F.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1)), {"tokens": batch[:, 1:].numel()}


def test_train_steps_history_and_determinism():
    batches = [tokens(batch=4, seq=9, seed=s) for s in range(4)]
    runs = []
    for _ in range(2):
        model = lm(balancing="aux_free", noise="noisy_topk", dropout=0.1)
        history = train_steps(model, lambda step: batches[step], lm_loss, steps=4, lr=1e-2, seed=3, progress=False)
        runs.append((model, history))
    (model, history), (other, again) = runs
    assert list(history.columns) == ["step", "loss", "aux_loss", "total", "maxvio_0", "maxvio_1", "tokens"]
    assert len(history) == 4 and history["aux_loss"].eq(0).all()
    assert history.equals(again)  # same seed: same noise, dropout and updates
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), other.state_dict().values()))
    assert model.moe_layers[0].router.expert_bias.abs().sum() > 0


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model = lm(balancing="aux_free")
    batches = [tokens(batch=4, seq=9, seed=s) for s in range(2)]
    train_steps(model, lambda step: batches[step], lm_loss, steps=2, progress=False)
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(model, path, extra={"note": "x"})
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt", "model.pt.check.json"]  # no temporary
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and loaded.checkpoint_extra == {"note": "x"}
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    x = tokens()
    assert torch.equal(loaded(x), model.eval()(x))
    path.write_bytes(path.read_bytes()[:-100])  # a truncated copy
    with pytest.raises(MoeError, match="checkpoint .* is damaged .*truncated"):
        load_checkpoint(path)


def test_training_mode_randomness_needs_a_generator():
    model = lm(dropout=0.1)
    with pytest.raises(MoeError, match="generator"):
        model(tokens())
    model(tokens(), generator=gen(0))
    model.eval()(tokens())


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"n_heads": 3}, "n_heads"),
        ({"ffn": "sparse"}, "ffn"),
        ({"top_k": 5}, "top_k"),
        ({"dropout": 1.5}, "dropout"),
        ({"balancing": "x"}, "balancing"),
        ({"max_len": 0}, "max_len"),
    ],
)
def test_invalid_config_names_the_parameter(overrides, name):
    with pytest.raises(MoeError, match=name):
        make_config(**(SMALL | overrides))


def test_invalid_model_arguments():
    config = make_config(**SMALL)
    with pytest.raises(MoeError, match="input"):
        TransformerModel(config, input="pixels", n_classes=2)
    with pytest.raises(MoeError, match="n_classes"):
        TransformerModel(config, head="classifier")
    with pytest.raises(MoeError, match="head"):
        TransformerModel(config, input="patches", patch_dim=4, head="lm")
    with pytest.raises(MoeError, match="head_mask"), masked_heads(lm(), torch.ones(4)):
        pass
    with pytest.raises(MoeError, match="max_len"):
        lm()(tokens(seq=17))


def test_a_diverging_loss_stops_with_one_line_naming_lr_and_the_step():
    batches = [tokens(batch=4, seq=9, seed=s) for s in range(4)]
    model = lm()

    def exploding(model, batch, generator):
        loss, extras = lm_loss(model, batch, generator)
        return loss * float("inf"), extras  # what an infinite or huge learning rate leads to

    with pytest.raises(MoeError) as err:
        train_steps(model, lambda step: batches[step], exploding, steps=4, lr=1e-2, progress=False)
    assert str(err.value).startswith("training diverged: the loss is inf at step 1 of 4 (LR=0.01)")
    assert "\n" not in str(err.value)
