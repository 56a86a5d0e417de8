"""Acceptance tests for notebook 05: relative load, balancing through the notebook's configs, specialisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.measures.hooks import record
from moe_utils.measures.routing import max_violation
from moe_utils.measures.specialisation import (
    document_bootstrap,
    domain_specialisation,
    heldout_maxvio_by_method,
    specialisation_by_method,
)
from moe_utils.moe.router import Router
from moe_utils.moe.transformer import TransformerModel
from moe_utils.runtime import make_generator
from moe_utils.studies.expert_load.job import document_counts
from moe_utils.studies.expert_load.method import (
    METHODS,
    global_maxvio,
    held_out_routing,
    lm_config,
    mixed_domain_batch,
    relative_load,
    specialisation_table,
    train_lm,
    training_maxvio,
)


def router_from(config, d_model, generator):
    """A Router with exactly the routing settings the notebook's config gives its MoE layers."""
    return Router(d_model, config.router, generator=generator)


@pytest.mark.parametrize("n_experts,k,shape", [(8, 2, (3, 17)), (5, 1, (40,)), (16, 4, (2, 3, 5))])
def test_relative_load_averages_exactly_one(n_experts, k, shape):
    g = make_generator(0)
    scores = torch.rand(*shape, n_experts, generator=g)
    topk = scores.topk(k, dim=-1).indices
    rel = relative_load(topk, n_experts)
    assert rel.shape == (n_experts,)
    assert rel.mean().item() == pytest.approx(1.0, abs=1e-12)
    skewed = torch.zeros(*shape, k, dtype=torch.long) + torch.arange(k)  # every token to experts 0..k-1
    rel = relative_load(skewed, n_experts)
    assert rel.mean().item() == pytest.approx(1.0, abs=1e-12)
    assert rel[0].item() == pytest.approx(n_experts / k)  # K·T tokens where K·T/N were due


def test_relative_load_by_hand_and_empty():
    topk = torch.tensor([[0, 1], [0, 2], [0, 1]])  # T=3, K=2, N=4: balanced share 1.5
    assert relative_load(topk, 4).tolist() == pytest.approx([2.0, 4 / 3, 2 / 3, 0.0])
    with pytest.raises(MoeError):
        relative_load(torch.zeros(0, 2, dtype=torch.long), 4)


def test_configs_differ_only_in_balancing():
    a, f = lm_config("aux_loss", alpha=0.02, gamma=0.05), lm_config("aux_free", alpha=0.02, gamma=0.05)
    ra, rf = a.router, f.router
    assert (ra.balancing, ra.aux_loss_alpha, ra.bias_update_rate) == ("aux_loss", 0.02, 0.0)
    assert (rf.balancing, rf.aux_loss_alpha, rf.bias_update_rate) == ("aux_free", 0.0, 0.05)
    assert ra.scoring == rf.scoring == "sigmoid" and a.causal and ra.aux_loss_scope == "sequence"
    balancing = ("balancing", "aux_loss_alpha", "bias_update_rate")
    assert {k: v for k, v in vars(ra).items() if k not in balancing} == {
        k: v for k, v in vars(rf).items() if k not in balancing
    }
    assert {k: v for k, v in vars(a).items() if k != "router"} == {k: v for k, v in vars(f).items() if k != "router"}
    with pytest.raises(MoeError, match="method"):
        lm_config("none")


def test_bias_update_moves_skewed_router_toward_balance():
    config = lm_config("aux_free", gamma=0.01)
    router = router_from(config, 4, make_generator(3))
    with torch.no_grad():
        router.gate.weight[:, 0] = torch.linspace(2.0, -2.0, config.router.n_experts)  # feature 0 is 1 below: a skew
    x = torch.randn(4, 64, 4, generator=make_generator(4))
    x[..., 0] = 1.0
    first = relative_load(router(x).topk_idx, config.router.n_experts)
    for _ in range(200):
        router.update_bias(router(x).load)
    last = relative_load(router(x).topk_idx, config.router.n_experts)
    assert first.max() > 2.0  # strongly skewed at the start
    assert last.max() < 0.5 * first.max()
    assert (last - 1).abs().max() < (first - 1).abs().max()
    assert router.expert_bias[0] < 0 < router.expert_bias[-1]  # the favoured expert is pushed down


def test_bias_changes_selection_not_gate_weights_in_the_model():
    model = TransformerModel(lm_config("aux_free", n_layers=2), input="tokens", head="lm", seed=0).eval()
    x = torch.randint(0, 256, (2, 16), generator=make_generator(1))
    with record(model.routers()) as seen:
        model(x)
    plain = seen.output(0)
    model.moe_layers[0].router.expert_bias[3] = 10.0  # expert 3 now always selected in layer 0
    with record(model.routers()) as seen:
        model(x)
    biased = seen.output(0)
    torch.testing.assert_close(plain.scores, biased.scores)  # layer 0's input is unchanged
    assert (biased.topk_idx == 3).any(-1).all() and not (plain.topk_idx == 3).any(-1).all()
    chosen = biased.scores.gather(-1, biased.topk_idx)
    torch.testing.assert_close(biased.topk_weight, chosen / chosen.sum(-1, keepdim=True))  # unbiased s
    assert relative_load(biased.topk_idx, 8)[3] == pytest.approx(8 / 2)


def test_sequence_wise_balance_loss_matches_hand_computation():
    config = lm_config("aux_loss", n_experts=2, top_k=1, alpha=0.1)
    router = router_from(config, 2, None)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(2))
    scores = torch.tensor([[[0.6, 0.2], [0.5, 0.3]], [[0.1, 0.3], [0.2, 0.6]]])  # [seq=2, tokens=2, experts=2]
    routing = router(torch.log(scores / (1 - scores)))  # sigmoid gives back the scores
    # seq 0: both tokens pick expert 0: f = (2, 0), P_0 = mean(.6/.8, .5/.8) = .6875 -> 1.375
    # seq 1: both pick expert 1: f = (0, 2), P_1 = mean(.3/.4, .6/.8) = .75 -> 1.5; mean 1.4375, times alpha
    assert routing.topk_idx.flatten().tolist() == [0, 0, 1, 1]
    assert routing.aux_loss.item() == pytest.approx(0.1 * 1.4375, rel=1e-5)
    free = router_from(lm_config("aux_free", n_experts=2, top_k=1), 2, None)
    assert free(torch.zeros(1, 3, 2)).aux_loss.item() == 0.0


def test_domain_specialisation_on_hand_made_loads():
    uniform = np.ones((3, 2, 4))
    assert domain_specialisation(uniform) == 0.0
    same = np.tile(np.array([[[2.0, 0.0, 1.0, 1.0]]]), (3, 2, 1))  # imbalanced but identical across domains
    assert domain_specialisation(same) == 0.0
    split = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])  # two domains, one layer, each owns one expert
    assert domain_specialisation(split) == pytest.approx(1.0)  # std of (2, 0) is 1 for both experts
    mixed = np.array([[[2.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [1.0, 1.0]]])  # layer 0 split, layer 1 uniform
    assert domain_specialisation(mixed) == pytest.approx(0.5)
    with pytest.raises(MoeError):
        domain_specialisation(np.ones((1, 2, 4)))


def test_specialisation_table_and_global_maxvio_from_long_table():
    rows = []
    for method, rel in {"a": [[2.0, 0.0], [0.0, 2.0]], "b": [[1.0, 1.0], [1.0, 1.0]]}.items():
        for d, domain in enumerate(["x", "y"]):
            for e in range(2):
                rows.append(
                    {
                        "method": method,
                        "domain": domain,
                        "layer": 0,
                        "expert": e,
                        "relative_load": rel[d][e],
                        "tokens_routed": int(rel[d][e] * 10),
                    }
                )
    load = pd.DataFrame(rows)
    spec = specialisation_table(load).set_index("method")
    assert spec.loc["a", "specialisation_all_layers"] == pytest.approx(1.0)
    assert spec.loc["b", "specialisation_all_layers"] == 0.0
    mv = global_maxvio(load).set_index("method")["maxvio"]
    assert mv["a"] == 0.0 and mv["b"] == 0.0  # summed over domains both are balanced


def test_mixed_batch_and_held_out_routing_shapes():
    g = make_generator(0)
    streams = {
        "a": torch.randint(0, 256, (500,), dtype=torch.uint8),
        "b": torch.randint(0, 256, (300,), dtype=torch.uint8),
    }
    x, y, ids = mixed_domain_batch(streams, 3, 16, g)
    assert x.shape == y.shape == (6, 16) and ids.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(x[:, 1:], y[:, :-1])
    model = TransformerModel(lm_config("aux_free", n_layers=2, seq_len=16), input="tokens", head="lm", seed=0)
    load, loss = held_out_routing(model, streams, batch_size=4, progress=False)
    assert len(load) == 2 * 2 * 8 and set(loss["domain"]) == {"a", "b"}
    assert set(load["layer"]) == {1, 2} and set(load["expert"]) == set(
        range(1, 9)
    )  # numbered from 1, as in the figures
    assert np.allclose(load.groupby(["domain", "layer"])["relative_load"].mean(), 1.0)
    n_tokens = load.groupby(["domain", "layer"])["tokens_routed"].sum() / 2  # K = 2
    assert n_tokens.loc["a"].tolist() == [(499 // 16) * 16] * 2
    history = pd.DataFrame({"step": [0, 1], "maxvio_0": [1.0, 0.5], "maxvio_1": [2.0, 0.25]})
    long = training_maxvio({"m": history})
    assert len(long) == 4 and long["maxvio"].sum() == pytest.approx(3.75) and set(long["layer"]) == {1, 2}
    assert max_violation(torch.tensor([3.0, 1.0])) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def tiny_lm():
    config = lm_config("aux_free", d_model=16, n_heads=2, n_layers=2, n_experts=4, top_k=2, d_expert=8, seq_len=16)
    generator = torch.Generator().manual_seed(0)
    train = {d: torch.randint(0, 256, (2000,), generator=generator, dtype=torch.uint8) for d in ("x", "y")}
    model, _ = train_lm(
        config, train, steps=3, per_domain=2, lr=1e-3, seed=0, device=torch.device("cpu"), progress=False
    )
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
    groups = {
        d: rng.integers(0, 50, size=(6, 2, 3, 2, 4)) for d in ("x", "y", "z")
    }  # [docs, methods, seeds, layers, experts]
    spec = specialisation_by_method(groups)
    for m in range(2):
        per_seed = []
        for s in range(3):
            rows = []
            for d, g in groups.items():
                c = g[:, m, s].sum(0)  # [layers, experts]
                for layer in range(2):
                    for e in range(4):
                        rows.append(
                            {
                                "method": "m",
                                "domain": d,
                                "layer": layer,
                                "expert": e,
                                "relative_load": c[layer, e] / (c[layer].sum() / 4),
                            }
                        )
            per_seed.append(specialisation_table(pd.DataFrame(rows)).iloc[0]["specialisation_all_layers"])
        assert spec[m] == pytest.approx(np.mean(per_seed))
    total = sum(g.sum(0) for g in groups.values())[0, 0]  # method 0, seed 0: [layers, experts]
    maxvio = ((total.max(-1) - total.mean(-1)) / total.mean(-1)).mean()
    assert heldout_maxvio_by_method({d: g[:, :, :1] for d, g in groups.items()})[0] == pytest.approx(maxvio)
    boot = document_bootstrap(groups, METHODS, n_boot=50)
    assert ((boot.ci_low <= boot.estimate) & (boot.estimate <= boot.ci_high)).all()
    diff = boot[(boot.statistic == "specialisation") & (boot.method == "aux_free − aux_loss")].iloc[0]
    assert diff.estimate == pytest.approx(spec[1] - spec[0])  # METHODS = (aux_loss, aux_free)


def tiny_load_tables(free_always_higher: bool = True, t_low: float = 0.1):
    """Hand-made notebook-05 tables: 2 seeds, one configuration, three domains; ``t_low``: the low end of the
    specialisation difference's t-interval over seeds."""
    from types import SimpleNamespace

    from moe_utils.studies.expert_load.run import shape_table
    from moe_utils.studies.expert_load.settings import ExpertLoadSettings

    domains = ["wikipedia", "github", "dm_mathematics"]
    record = pd.DataFrame(
        {"domain": domains, "train_tokens": [1000] * 3, "held_out_tokens": [100] * 3, "held_out_documents": [7, 8, 9]}
    )
    corpus = SimpleNamespace(
        record=record,
        train=dict.fromkeys(domains),
        info={"dm_mathematics": {"modules_used": ["a", "b"], "examples_per_module": 5, "modules_failed": ["c"]}},
    )
    per_seed = pd.DataFrame(
        {
            "config": "standard",
            "method": ["aux_loss", "aux_free"] * 2,
            "seed": [0, 0, 1, 1],
            "specialisation": [0.1, 0.3, 0.1, 0.3],
            "heldout_maxvio": [0.2, 0.4, 0.2, 0.4],
            "max_relative_load": [1.5, 3.0, 1.5, 3.0],
        }
    )
    holds = 2 if free_always_higher else 1
    margins = pd.DataFrame(
        [
            {"config": "standard", "value": v, "mean": 0.2, "std": 0.0, "n": 2, "holds": holds, "below": 2 - holds}
            | ({"t_low": t_low, "t_high": 0.3} if v == "specialisation" else {"t_low": -0.3, "t_high": 0.1})
            for v in ["specialisation", "heldout_maxvio"]
        ]
        + [
            {"config": "standard", "value": f"loss_{d}", "mean": -0.01, "std": 0.0, "n": 2, "holds": 0, "below": 2}
            | {"t_low": -0.02, "t_high": -0.005}
            for d in domains
        ]
    )
    low = 0.05 if free_always_higher else -0.05
    boot = pd.DataFrame(
        [
            {
                "config": "standard",
                "statistic": stat,
                "method": "aux_free − aux_loss",
                "estimate": 0.2 if stat == "specialisation" else -0.03,
                "ci_low": low if stat == "specialisation" else -0.1,
                "ci_high": 0.3 if stat == "specialisation" else 0.012,
                "doc_ci_low": 0.15 if stat == "specialisation" else -0.055,
                "doc_ci_high": 0.25 if stat == "specialisation" else -0.01,
            }
            for stat in ("specialisation", "heldout_maxvio")
        ]
    )
    summary = pd.DataFrame(
        {"train MaxVio_batch, first 100 steps": [1.0, 2.0], "train MaxVio_batch, last 100 steps": [0.5, 0.2]},
        index=["aux_free", "aux_loss"],
    )
    return SimpleNamespace(
        settings=ExpertLoadSettings(fine_n_experts=0, paper_rates=0),
        shapes=shape_table(ExpertLoadSettings(fine_n_experts=0, paper_rates=0)),
        corpus=corpus,
        per_seed=per_seed,
        margins=margins,
        bootstrap=boot,
        maxvio_summary=summary,
        grid=pd.DataFrame(),
    )


def test_findings_give_the_papers_verdict_from_seeds_and_documents():
    from moe_utils.studies.expert_load.report import findings

    text = findings(tiny_load_tables()).replace("\n", " ")
    assert "aux-loss-free **0.300 ± 0.000** (3.0×; mean ± std over 2 seeds)" in text
    assert "0.200 [0.050, 0.300] (documents only, models fixed: [0.150, 0.250]) (together: above 0)" in text
    assert "t-interval over seeds [0.100, 0.300]" in text
    assert (
        "this holds in every seed, and both its interval over seeds and documents and its t-interval over seeds "
        "exclude 0, in every configuration" in text
    )
    assert (
        "two-stage interval −0.030 [−0.100, 0.012] (documents only, models fixed: [−0.055, −0.010]): better global "
        "balance **not established** (the two-stage interval and the t-interval include 0)" in text
    )  # the documents alone would exclude 0; the seeds do not
    assert "N/K = 4, α = 0.01, γ = 0.01" in text and "0.72 with the auxiliary loss (α = 0.001) against 0.04" in text
    assert "aux-loss-free is lower in every seed in 3 of 3 domains" in text and "7 Wikipedia documents" in text
    assert "aux-loss-free 1.00 → 0.50, aux-loss-based 2.00 → 0.20" in text
    refuted = findings(tiny_load_tables(free_always_higher=False)).replace("\n", " ")
    assert "(together: includes 0)." in refuted and "this does **not** hold in every seed" in refuted
    t_only = findings(tiny_load_tables(t_low=-0.01)).replace("\n", " ")  # the bootstrap excludes 0, t does not
    assert "(together: includes 0)" in t_only and "this does **not** hold in every seed" in t_only


def test_the_fine_grained_and_standard_shapes_have_equal_active_parameters():
    from moe_utils.studies.expert_load.run import shape_table
    from moe_utils.studies.expert_load.settings import PAPER_SHAPE, ExpertLoadSettings

    table = shape_table(ExpertLoadSettings()).set_index("shape")
    active = table["active expert parameters per layer"]
    assert active["fine-grained"] == active["standard"] == active[PAPER_SHAPE] == 3 * 64 * 32 * 3  # 3 SwiGLU widths
    assert (
        table.loc["fine-grained", "total expert parameters per layer"]
        > table.loc["standard", "total expert parameters per layer"]
    )
    assert table.loc[PAPER_SHAPE, "alpha (aux_loss)"] == table.loc[PAPER_SHAPE, "gamma (aux_free)"] == 0.001
    unmatched = shape_table(ExpertLoadSettings(fine_n_shared=1)).set_index("shape")[
        "active expert parameters per layer"
    ]
    assert unmatched["fine-grained"] == 15360  # one shared expert of width 16: 17 % fewer active parameters


def test_the_intervals_can_be_recomputed_from_the_saved_document_counts(tmp_path, monkeypatch):
    from moe_utils.io import paths
    from moe_utils.io.figures import save_arrays
    from moe_utils.studies.expert_load.run import bootstrap_table

    monkeypatch.setenv(paths.FIGURES_ENV, str(tmp_path))
    rng = np.random.default_rng(0)
    counts = {f"standard:{d}": rng.integers(0, 50, (6, 2, 3, 2, 4)) for d in ("wikipedia", "github")}
    before = bootstrap_table(counts, n_boot=50, seed=0)
    save_arrays(counts, "05_document_counts")
    with np.load(tmp_path / "05_document_counts.npz") as saved:
        after = bootstrap_table({k: saved[k] for k in saved.files}, n_boot=50, seed=0)
    pd.testing.assert_frame_equal(before, after)
    assert set(before.columns) >= {"ci_low", "ci_high", "doc_ci_low", "doc_ci_high"} and (before.seeds == 3).all()


def test_the_alpha_gamma_grid_pairs_each_method_with_its_own_rate_and_counts_the_cells():
    from types import SimpleNamespace

    from moe_utils.studies.expert_load.report import grid_line
    from moe_utils.studies.expert_load.run import grid_table
    from moe_utils.studies.expert_load.settings import FINE_PAPER_SHAPE, PAPER_SHAPE, ExpertLoadSettings

    settings = ExpertLoadSettings()
    assert settings.grid_runs == [(FINE_PAPER_SHAPE, "aux_loss"), (FINE_PAPER_SHAPE, "aux_free")]
    assert settings.config(FINE_PAPER_SHAPE, "aux_free").router.bias_update_rate == settings.paper_rates
    maxvio = {  # (config, method) -> held-out MaxVio; aux_free lower only against the aux-loss model at α = 0.001
        ("standard", "aux_loss"): 1.0, ("standard", "aux_free"): 1.5,
        (PAPER_SHAPE, "aux_loss"): 2.0, (PAPER_SHAPE, "aux_free"): 1.8,
        ("fine-grained", "aux_loss"): 3.0, ("fine-grained", "aux_free"): 2.5,
        (FINE_PAPER_SHAPE, "aux_loss"): 4.0, (FINE_PAPER_SHAPE, "aux_free"): 6.0,
    }  # fmt: skip
    rows = pd.DataFrame(
        [
            {"config": c, "method": m, "seed": s, "heldout_maxvio": v + s, "specialisation": 0.1, "loss_wiki": 2.0}
            for (c, m), v in maxvio.items()
            for s in (0, 1)  # another seed's rows are left out
        ]
    )
    grid = grid_table(settings, rows).set_index(["shape", "alpha", "gamma"])
    assert len(grid) == 8
    cell = grid.loc[("standard", 0.001, 0.01)]  # aux_loss at the papers' α, aux_free at our γ
    assert (cell.heldout_maxvio_aux_loss, cell.heldout_maxvio_aux_free) == (2.0, 1.5)
    assert cell.heldout_maxvio_difference == -0.5
    assert grid.loc[("fine-grained", 0.01, 0.001)].heldout_maxvio_aux_free == 6.0
    text = grid_line(SimpleNamespace(settings=settings, grid=grid.reset_index()))
    assert "standard: aux-loss-free has the lower MaxVio in 2 of 4 cells" in text
    assert "fine-grained: aux-loss-free has the lower MaxVio in 2 of 4 cells" in text
    assert "MaxVio 2.00 vs 1.50" in text
