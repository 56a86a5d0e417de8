"""The seed-study helpers of notebooks 04–07: summaries and paired margins, per-document routing counts, the
document bootstrap's statistics, the shuffled-label control, and the unnormalised layer trends."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.studies.expert_load import (
    held_out_routing,
    lm_config,
    specialisation_table,
    train_lm,
)
from moe_utils.studies.expert_load_seeds import (
    document_bootstrap,
    document_counts,
    heldout_maxvio_by_method,
    specialisation_by_method,
)
from moe_utils.studies.head_importance_seeds import shuffled_labels
from moe_utils.studies.layer_activation_seeds import layer_trends
from moe_utils.studies.routing_stability_seeds import pooled_curves
from moe_utils.studies.seeds import paired_margin, seed_list, seed_summary


def test_seed_list_starts_at_the_notebook_seed():
    assert seed_list(7, 3) == [7, 8, 9]
    with pytest.raises(MoeError, match="N_SEEDS=0"):
        seed_list(0, 0)


def test_seed_summary_is_mean_and_sample_std_per_group():
    frame = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "acc": [0.1, 0.2, 0.6, 1.0, 1.0, 1.0]})
    out = seed_summary(frame, ["run"], ["acc"]).set_index("run")
    assert out.loc["a", "acc_mean"] == pytest.approx(0.3)
    assert out.loc["a", "acc_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert out.loc["b", "acc_std"] == 0 and out.loc["a", "n_seeds"] == 3


def test_paired_margin_pairs_by_seed_not_by_row_order():
    frame = pd.DataFrame({"run": ["a", "a", "a", "b", "b", "b"], "seed": [0, 1, 2, 2, 0, 1], "acc": [1.0, 2.0, 3.0, 2.5, 1.5, 1.0]})
    m = paired_margin(frame, "run", "a", "b", "acc")  # differences by seed: 1-1.5, 2-1, 3-2.5
    assert m["mean"] == pytest.approx(np.mean([-0.5, 1.0, 0.5])) and m["holds"] == 2 and m["n"] == 3
    with pytest.raises(MoeError, match="no rows"):
        paired_margin(frame, "run", "a", "c", "acc")


def test_pooled_curves_weight_by_tokens():
    curves = pd.DataFrame({"run": "r", "noise_at": "router input", "seed": 0, "sigma": 0.5, "layer": [0, 1],
                           "jaccard": [1.0, 0.0], "changed": [0.0, 1.0], "tokens": [30, 10]})
    out = pooled_curves(curves).iloc[0]
    assert out.jaccard == pytest.approx(0.75) and out.changed == pytest.approx(0.25)


@pytest.fixture(scope="module")
def tiny_lm():
    config = lm_config("aux_free", d_model=16, n_heads=2, n_layers=2, n_experts=4, top_k=2, d_expert=8, seq_len=16)
    generator = torch.Generator().manual_seed(0)
    train = {d: torch.randint(0, 256, (2000,), generator=generator, dtype=torch.uint8) for d in ("x", "y")}
    model, _ = train_lm(config, train, steps=3, per_domain=2, lr=1e-3, seed=0, device=torch.device("cpu"), progress=False)
    held = {d: torch.randint(0, 256, (16 * 9 + 1,), generator=generator, dtype=torch.uint8) for d in ("x", "y")}
    doc_ids = {d: torch.repeat_interleave(torch.arange(4), torch.tensor([40, 40, 40, 25])) for d in held}
    return model, held, doc_ids


def test_document_counts_split_the_held_out_routing_by_document(tiny_lm):
    model, held, doc_ids = tiny_lm
    counts = document_counts(model, held, doc_ids)
    load, _ = held_out_routing(model, held, progress=False)
    for domain, c in counts.items():  # [docs, layers, experts]
        assert c.shape == (4, 2, 4)
        summed = load[load.domain == domain].pivot(index="layer", columns="expert", values="tokens_routed").to_numpy()
        np.testing.assert_array_equal(c.sum(0), summed)
        routed = 16 * 9  # every input byte of the 9 windows, K = 2 experts each
        per_doc = np.bincount(doc_ids[domain][:routed].numpy(), minlength=4) * 2
        np.testing.assert_array_equal(c[:, 0].sum(-1), per_doc)  # each document's tokens, no more, no less


def test_document_counts_need_one_document_id_per_byte(tiny_lm):
    model, held, doc_ids = tiny_lm
    with pytest.raises(MoeError, match="must match"):
        document_counts(model, held, {d: v[:-1] for d, v in doc_ids.items()})


def test_bootstrap_statistics_equal_the_tables_of_the_summed_counts():
    rng = np.random.default_rng(0)
    groups = {d: rng.integers(0, 50, size=(6, 2, 3, 2, 4)) for d in ("x", "y", "z")}  # [docs, methods, seeds, layers, experts]
    spec = specialisation_by_method(groups)
    for m in range(2):
        per_seed = []
        for s in range(3):
            rows = []
            for d, g in groups.items():
                c = g[:, m, s].sum(0)  # [layers, experts]
                for layer in range(2):
                    for e in range(4):
                        rows.append({"method": "m", "domain": d, "layer": layer, "expert": e, "relative_load": c[layer, e] / (c[layer].sum() / 4)})
            per_seed.append(specialisation_table(pd.DataFrame(rows)).iloc[0]["specialisation_all_layers"])
        assert spec[m] == pytest.approx(np.mean(per_seed))
    total = sum(g.sum(0) for g in groups.values())[0, 0]  # method 0, seed 0: [layers, experts]
    maxvio = ((total.max(-1) - total.mean(-1)) / total.mean(-1)).mean()
    assert heldout_maxvio_by_method({d: g[:, :, :1] for d, g in groups.items()})[0] == pytest.approx(maxvio)
    boot = document_bootstrap(groups, n_boot=50)
    assert ((boot.ci_low <= boot.estimate) & (boot.estimate <= boot.ci_high)).all()
    diff = boot[(boot.statistic == "specialisation") & (boot.method == "aux_free − aux_loss")].iloc[0]
    assert diff.estimate == pytest.approx(spec[1] - spec[0])  # METHODS = (aux_loss, aux_free)


def test_shuffled_labels_keep_the_counts_and_lose_the_order():
    labels = torch.arange(8).repeat_interleave(50)
    shuffled = shuffled_labels(labels, seed=0)
    assert torch.equal(torch.bincount(shuffled), torch.bincount(labels))
    assert (shuffled == labels).float().mean() < 0.3
    assert torch.equal(shuffled, shuffled_labels(labels, seed=0))


def test_layer_trends_count_rising_layers_without_rescaling():
    rows = [{"seed": 0, "step": step, "layer": layer, "q": (1 + layer) * (2.0 if step == 20 else 1.0)} for step in (10, 20) for layer in range(1, 13)]
    t = layer_trends(pd.DataFrame(rows), "q").iloc[0]
    assert t["layers rising"] == 12  # every layer doubles: a share could not show this
    assert t["late layers last"] == pytest.approx(2 * t["late layers first"])
