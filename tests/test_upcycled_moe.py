"""Notebook 09's machinery on a tiny Llama: the split forward equals the full one, the balancing steps on
hand-computed examples, a few training steps that move only the MoE feed-forwards, the noise measures' limits, and a
saved checkpoint routed by notebook 08's path giving the notebook's own counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from configs import TINY_LLAMA  # noqa: E402

from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.hf.partial import cached_layer_output, layer_output, logits_from  # noqa: E402
from moe_utils.hf.routing import expert_load_on_windows  # noqa: E402
from moe_utils.hf.upcycle import upcycle  # noqa: E402
from moe_utils.measures import hooks  # noqa: E402
from moe_utils.measures.specialisation import domain_specialisation  # noqa: E402
from moe_utils.studies.upcycled_moe.job import save_checkpoint  # noqa: E402
from moe_utils.studies.upcycled_moe.method import (  # noqa: E402
    aux_loss,
    held_out_measures,
    kl_and_flips,
    layer_profile,
    load_rows,
    moe_gates,
    noise_measures,
    train_step,
    trainable_parameters,
    update_correction_bias,
)
from moe_utils.studies.upcycled_moe.run import shuffled_specialisation  # noqa: E402
from moe_utils.studies.upcycled_moe.settings import UpcycledSettings  # noqa: E402

SMALL = TINY_LLAMA
FIRST = 2  # the tiny model's first MoE layer (2 MoE layers of 4)


def tiny_moe(seed: int = 0, reinit_share: float = 0.25):
    torch.manual_seed(seed)
    dense = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL)).eval()
    moe = upcycle(dense, n_experts=4, top_k=2, moe_layers=2, reinit_share=reinit_share, seed=seed)
    moe.set_experts_implementation("grouped_mm")
    return dense, moe


def windows(n: int = 6, seq: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 64, (n, seq), generator=torch.Generator().manual_seed(seed))


def test_the_split_forward_gives_the_full_forwards_logits_exactly():
    _, moe = tiny_moe()
    w = windows()
    with torch.no_grad():
        full = moe(w).logits
        split = logits_from(moe, cached_layer_output(moe, w, FIRST, batch_size=6), FIRST)
        assert torch.equal(split, full)
        assert torch.equal(layer_output(moe, w, 0), moe.get_input_embeddings()(w))


def test_the_bias_update_on_a_hand_computed_example():
    _, moe = tiny_moe()
    gate = moe_gates(moe)[FIRST]
    idx = torch.tensor([[0, 1], [0, 2], [0, 1]])  # loads [3, 2, 1, 0], mean 1.5
    load = update_correction_bias(gate, idx, 0.1)
    assert load.tolist() == [3.0, 2.0, 1.0, 0.0]
    torch.testing.assert_close(gate.e_score_correction_bias, torch.tensor([-0.1, -0.1, 0.1, 0.1]))


def test_the_sequence_wise_aux_loss_on_a_hand_computed_example():
    _, moe = tiny_moe()
    gates = {FIRST: moe_gates(moe)[FIRST]}
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, -2.0]])  # one sequence of two tokens
    idx = torch.tensor([[0, 1], [0, 2]])
    routed = hooks.Recording(outputs={FIRST: [(logits, None, idx)]})
    s = logits.sigmoid()
    p = (s / s.sum(-1, keepdim=True)).mean(0)  # P_i
    f = torch.tensor([2.0, 1.0, 1.0, 0.0]) * 4 / (2 * 2)  # f_i = N / (K T) · count_i
    want = 0.5 * float((f * p).sum())
    assert float(aux_loss(routed, gates, (1, 2), 0.5)) == pytest.approx(want)


def test_a_few_training_steps_move_only_the_moe_feed_forwards_and_the_bias():
    _, moe = tiny_moe()
    params = trainable_parameters(moe, FIRST)
    before = {n: p.detach().clone() for n, p in moe.named_parameters()}
    opt = torch.optim.AdamW(params, lr=1e-2)
    w = windows()
    h = cached_layer_output(moe, w, FIRST)
    ids = torch.arange(3).repeat_interleave(2)
    rows = [train_step(moe, opt, h, w, ids, FIRST, "aux_free", 0.01) for _ in range(3)]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert {"loss_wikipedia", "loss_github", "loss_dm_mathematics", "maxvio_3", "maxvio_4"} <= set(rows[0])
    moved = {n for n, p in moe.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(".mlp." in n and int(n.split(".")[2]) >= FIRST for n in moved)
    assert any("gate.weight" in n for n in moved) and any("experts" in n for n in moved)
    assert moe_gates(moe)[FIRST].e_score_correction_bias.abs().sum() > 0  # aux_free moved its bias
    row = train_step(moe, opt, h, w, ids, FIRST, "aux_loss", 0.01)
    assert row["aux_loss"] > 0


def test_noise_measures_at_tiny_sigma_change_nothing_and_pinned_routing_is_the_clean_choice():
    _, moe = tiny_moe()
    h = cached_layer_output(moe, windows(), FIRST)
    rows = noise_measures(moe, h, FIRST, [1e-9, 1.0], seed=0)
    tiny = rows[rows.sigma == 1e-9]
    assert (tiny.jaccard == 1.0).all() and (tiny.changed == 0.0).all()
    assert (tiny.kl.abs() < 1e-6).all() and (tiny["top-1 flips"] == 0).all()
    big = rows[rows.sigma == 1.0]
    assert ((big.jaccard >= 0) & (big.jaccard <= 1)).all() and (big.kl > 0).all()
    routing_only = noise_measures(moe, h, FIRST, [1e-9, 1.0], seed=0, costs=False)
    np.testing.assert_array_equal(routing_only.jaccard.to_numpy(), rows.jaccard.to_numpy())  # the same ε
    assert "kl" not in routing_only
    clean = torch.randn(2, 3, 5)
    assert kl_and_flips(clean, clean) == (0.0, 0.0)


def test_held_out_counts_and_a_saved_checkpoint_through_notebook_08s_path(tmp_path):
    _, moe = tiny_moe()
    w = {"wikipedia": windows(8, seed=2), "github": windows(8, seed=3)}
    docs = {d: torch.arange(v.numel()).view(v.shape) // 20 for d, v in w.items()}  # documents of 20 tokens
    h = {d: cached_layer_output(moe, v, FIRST, batch_size=8) for d, v in w.items()}
    losses, counts = held_out_measures(moe, h, w, docs, FIRST, batch_size=8)
    assert list(losses.domain) == list(w)
    assert all(c.shape[1:] == (2, 4) and c.sum() == 8 * 16 * 2 * 2 for c in counts.values())  # tokens × K × layers
    ours = load_rows(counts, [FIRST, FIRST + 1], top_k=2)
    assert (ours.groupby(["domain", "layer"]).relative_load.mean().round(9) == 1).all()

    class NoTokenizer:
        def save_pretrained(self, folder):
            pass

    folder = save_checkpoint(moe, NoTokenizer(), tmp_path / "aux_free-seed0")
    again = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    theirs = expert_load_on_windows(again, w, batch_size=8)
    both = theirs.merge(ours, on=["domain", "layer", "expert"])
    assert len(both) == len(ours) and (both.tokens_routed_x == both.tokens_routed_y).all()
    assert not list(tmp_path.glob("*.staging"))


def test_layer_profile_and_the_shuffled_floor():
    _, moe = tiny_moe()
    w = windows()
    profile = layer_profile(moe, cached_layer_output(moe, w, FIRST), w, FIRST)
    assert list(profile.layer) == [3, 4] and (profile["relative residual update"] > 0).all()
    same = [np.ones((5, 2, 4)) * 3, np.ones((7, 2, 4)) * 3]  # every document routes alike: no domain signal
    assert shuffled_specialisation(same, 20, 0) == pytest.approx(0.0)
    split = [np.tile([[9.0, 1, 1, 1]], (6, 2, 1)), np.tile([[1.0, 1, 1, 9]], (6, 2, 1))]
    real = domain_specialisation(np.stack([d.sum(0) / (d.sum(0).sum(-1, keepdims=True) / 4) for d in split]))
    assert shuffled_specialisation(split, 50, 0) < real


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=9), "TOP_K=9 is not allowed"),
        (dict(model="nowhere"), "MODEL='nowhere' is not allowed"),
        (dict(steps=100, train_windows=10), "TRAIN_WINDOWS=10 is not allowed"),
        (dict(n_checkpoints=7), "N_CHECKPOINTS=7 is not allowed"),
        (dict(sigmas=(0.5, -1)), "SIGMAS=(0.5, -1) is not allowed"),
        (dict(reinit_share=1.5), "REINIT_SHARE=1.5 is not allowed"),
    ],
)
def test_bad_parameters_are_one_line_errors(kwargs, message):
    with pytest.raises(MoeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        UpcycledSettings(**kwargs)


def test_runs_pair_the_methods_by_seed_and_add_the_dense_control():
    s = UpcycledSettings(n_seeds=2)
    assert s.runs == [("aux_loss", 0), ("aux_free", 0), ("aux_loss", 1), ("aux_free", 1), ("dense", 0)]
    assert isinstance(pd.DataFrame(s.runs), pd.DataFrame)
