"""External-model path on tiny random-weight Hugging Face models built from their configs and saved locally (no hub)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.hf.heads import head_shape, last_position_heads, mask_gradients  # noqa: E402
from moe_utils.hf.loading import load_causal_lm  # noqa: E402
from moe_utils.hf.routing import capture_routing, expert_load_table, routers, stability_table  # noqa: E402
from moe_utils.measures.probe import probe_importance, train_probe  # noqa: E402
from moe_utils.studies.expert_load.method import specialisation_table  # noqa: E402
from moe_utils.studies.expert_load.plots import load_heatmaps  # noqa: E402

# 272 = the 256 byte tokens + room for special tokens that a model's own tokenizer class adds (e.g. Qwen2's pad)
SMALL = dict(
    vocab_size=272,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
)
MOE_CONFIGS = {
    "mixtral": lambda: transformers.MixtralConfig(**SMALL, num_local_experts=8, num_experts_per_tok=2),
    "olmoe": lambda: transformers.OlmoeConfig(**SMALL, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False),
    "qwen2_moe": lambda: transformers.Qwen2MoeConfig(
        **SMALL,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        num_experts=8,
        num_experts_per_tok=2,
        norm_topk_prob=False,
    ),
    "qwen3_moe": lambda: transformers.Qwen3MoeConfig(
        **SMALL, head_dim=8, moe_intermediate_size=16, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True
    ),
    "deepseek_v3": lambda: transformers.DeepseekV3Config(
        **{**SMALL, "num_key_value_heads": 4},
        moe_intermediate_size=16,
        n_routed_experts=8,
        num_experts_per_tok=2,
        n_group=4,
        topk_group=2,
        n_shared_experts=1,
        first_k_dense_replace=0,
        kv_lora_rank=16,
        q_lora_rank=None,
        qk_rope_head_dim=4,
        qk_nope_head_dim=4,
        v_head_dim=8,
        routed_scaling_factor=2.5,
        norm_topk_prob=True,
    ),
}
DENSE_CONFIGS = {
    "llama": lambda: transformers.LlamaConfig(**SMALL),
    "qwen2": lambda: transformers.Qwen2Config(**SMALL),
    "gpt_neox": lambda: transformers.GPTNeoXConfig(**{k: v for k, v in SMALL.items() if k != "num_key_value_heads"}),
}


def byte_tokenizer():
    """A byte-level tokenizer built locally: 256 byte tokens, no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=sorted(alphabet)[0])


def saved_model(kind: str, folder, seed: int = 0, configs=None):
    """A tiny random model of ``kind`` and the byte tokenizer saved to ``folder`` (what a downloaded checkpoint looks like)."""
    torch.manual_seed(seed)
    config = (configs or {**MOE_CONFIGS, **DENSE_CONFIGS})[kind]()
    model = transformers.AutoModelForCausalLM.from_config(config)
    if kind == "deepseek_v3":  # a non-zero correction bias, so the test sees it used
        for _, gate in routers(model):
            gate.e_score_correction_bias.copy_(torch.linspace(-0.3, 0.3, gate.e_score_correction_bias.numel()))
    model.save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    return folder


def reference_topk(kind: str, gate, x: torch.Tensor, config) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent recomputation of a router's choice from its input and weights: (indices, weights), sorted by index."""
    logits = x.float() @ gate.weight.float().T  # [T, E]
    if kind == "deepseek_v3":
        scores = logits.sigmoid()
        choice = scores + gate.e_score_correction_bias
        groups = choice.view(len(x), config.n_group, -1)
        group_score = groups.topk(2, dim=-1).values.sum(-1)  # [T, groups]
        keep = torch.zeros_like(group_score, dtype=torch.bool).scatter_(
            1, group_score.topk(config.topk_group, dim=-1).indices, True
        )
        choice = choice.masked_fill(~keep.repeat_interleave(groups.shape[-1], dim=1), float("-inf"))
        idx = choice.topk(config.num_experts_per_tok, dim=-1).indices
        w = scores.gather(1, idx)
        w = w / (w.sum(-1, keepdim=True) + 1e-20) * config.routed_scaling_factor
    else:
        probs = logits.softmax(-1)
        w, idx = probs.topk(config.num_experts_per_tok, dim=-1)
        if kind == "mixtral" or config.norm_topk_prob:
            w = w / w.sum(-1, keepdim=True)
    order = idx.argsort(-1)
    return idx.gather(1, order), w.gather(1, order)


@pytest.mark.parametrize("kind", list(MOE_CONFIGS))
def test_captured_routing_equals_an_independent_recomputation(kind, tmp_path):
    model, tokenizer = load_causal_lm(str(saved_model(kind, tmp_path / kind)), device="cpu")
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))
    captured = capture_routing(model, ids)
    assert [r.layer for r in captured] == [0, 1]
    for routing, (_, gate) in zip(captured, routers(model)):
        idx, w = reference_topk(kind, gate, routing.router_input, model.config)
        order = routing.indices.argsort(-1)
        assert torch.equal(routing.indices.gather(1, order), idx), kind
        torch.testing.assert_close(routing.weights.float().gather(1, order), w)


def test_deepseek_group_limit_and_bias_matter(tmp_path):
    model, _ = load_causal_lm(str(saved_model("deepseek_v3", tmp_path / "ds")), device="cpu")
    routing = capture_routing(model, torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(2)))[0]
    group = routing.indices // (8 // model.config.n_group)  # [T, k] group of each chosen expert
    assert all(len(set(g.tolist())) <= model.config.topk_group for g in group)  # at most topk_group groups per token
    plain = (routing.router_input.float() @ routers(model)[0][1].weight.float().T).sigmoid().topk(2, dim=-1).indices
    assert not torch.equal(
        plain.sort(-1).values, routing.indices.sort(-1).values
    )  # the bias and groups change the choice


@pytest.mark.parametrize("kind", ["olmoe", "deepseek_v3"])
def test_expert_load_averages_one_and_plots_with_the_shared_functions(kind, tmp_path):
    model, tokenizer = load_causal_lm(str(saved_model(kind, tmp_path / kind)), device="cpu")
    texts = {
        "wikipedia": "The quick brown fox jumps over the lazy dog. " * 20,
        "github": "def f(x):\n    return x + 1\n" * 30,
        "dm_mathematics": "Q: What is 3 + 4?\nA: 7\n" * 30,
    }
    load = expert_load_table(model, tokenizer, texts, seq_len=32, max_tokens=256, label=kind)
    assert set(load.columns) >= {"method", "domain", "layer", "expert", "tokens_routed", "n_tokens", "relative_load"}
    assert (load.groupby(["domain", "layer"])["relative_load"].mean() - 1).abs().max() < 1e-9
    assert load["layer"].min() >= 1 and load["expert"].min() == 1  # numbered from 1, as in every table
    assert len(specialisation_table(load)) == 1
    load_heatmaps(load)


def test_a_model_without_routers_is_one_line(tmp_path):
    model, _ = load_causal_lm(str(saved_model("llama", tmp_path / "llama")), device="cpu")
    with pytest.raises(MoeError, match="no MoE routers") as err:
        routers(model)
    assert "\n" not in str(err.value)


def test_sigma_zero_gives_jaccard_one_and_noise_lowers_it(tmp_path):
    model, _ = load_causal_lm(str(saved_model("mixtral", tmp_path / "mx")), device="cpu")
    table = stability_table(
        model, torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(3)), [0.0, 2.0]
    )
    assert (table[table.sigma == 0].jaccard == 1.0).all() and (table[table.sigma == 0].changed == 0.0).all()
    assert (table[table.sigma == 2.0].jaccard < 1.0).all()


@pytest.mark.parametrize("kind", list(DENSE_CONFIGS))
def test_head_mask_zeroes_a_head_and_its_gradient_matches_finite_differences(kind, tmp_path):
    model, tokenizer = load_causal_lm(str(saved_model(kind, tmp_path / kind)), device="cpu")
    model = model.double()
    layers, heads = head_shape(model)
    prompts, answers, tasks = ["ab:c?", "xyz=", "T&F?", "q>s?"], ["1", "2", "T", ">"], torch.tensor([0, 1, 0, 1])
    mask = torch.ones(layers, heads, dtype=torch.float64)
    mask[1, 2] = 0.0
    features = last_position_heads(model, tokenizer, prompts, mask)  # [N, L, H, d]
    assert features[:, 1, 2].abs().max() == 0 and features[:, 0].abs().max() > 0
    probe = train_probe(features.float(), tasks, 2, steps=20, seed=0)
    assert (
        probe_importance(probe, features.float(), tasks, 2)[:, 1, 2].abs().max() == 0
    )  # a zeroed head has importance 0

    from torch.nn import functional as F

    from moe_utils.hf.heads import answer_ids, encode, head_mask_hooks, last_logits

    def loss(m: torch.Tensor) -> float:
        with torch.no_grad(), head_mask_hooks(model, m, []):
            return float(
                F.cross_entropy(
                    last_logits(model, encode(tokenizer, prompts[:1])),
                    answer_ids(tokenizer, answers[:1]),
                    reduction="sum",
                )
            )

    grad = mask_gradients(
        model, tokenizer, prompts[:1], answers[:1], mask=torch.ones(layers, heads, dtype=torch.float64)
    )[0]
    h = 1e-2  # RMSNorm computes in float32 even in a float64 model: a larger step keeps rounding below the signal
    for layer, head in ((0, 1), (1, 3)):
        up, down = torch.ones(layers, heads, dtype=torch.float64), torch.ones(layers, heads, dtype=torch.float64)
        up[layer, head] += h
        down[layer, head] -= h
        numeric = (loss(up) - loss(down)) / (2 * h)
        assert abs(numeric - float(grad[layer, head])) < 1e-4 + 1e-2 * abs(numeric), (
            kind,
            layer,
            head,
            numeric,
            float(grad[layer, head]),
        )


def test_a_name_that_is_neither_a_folder_nor_reachable_is_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import; no network retries
    with pytest.raises(MoeError, match="neither a local folder nor reachable on the Hugging Face hub") as err:
        load_causal_lm("no-such-org/no-such-model-xyz", device="cpu")
    assert "\n" not in str(err.value) and "download" in str(err.value)


def test_an_unsupported_architecture_is_one_line_naming_the_supported_ones(tmp_path):
    configs = {"gpt2": lambda: transformers.GPT2Config(vocab_size=256, n_embd=32, n_layer=1, n_head=4)}
    folder = saved_model("gpt2", tmp_path / "gpt2", configs=configs)
    with pytest.raises(MoeError, match="is a 'gpt2' model; this analysis supports mixtral, olmoe"):
        load_causal_lm(str(folder), device="cpu")
