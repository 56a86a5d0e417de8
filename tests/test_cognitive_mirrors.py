"""Notebook 10's pipeline on a tiny CogQA-shaped file and a tiny Llama: teacher-forced answers against a manual
computation, the stand-in for the paper's answer tokens, the whole pipeline's tables (random heads never in the top
set), Holm's adjustment, and one-line errors for bad parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from moe_utils.datasets.cogqa import FILES, FUNCTIONS, load_cogqa  # noqa: E402
from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.hf.teacher_forced import answer_rows, head_mask, teacher_forced  # noqa: E402
from moe_utils.stats import holm, mean_test  # noqa: E402
from moe_utils.studies.cognitive_mirrors.job import cognitive_mirrors, token_picker  # noqa: E402
from moe_utils.studies.cognitive_mirrors.report import findings, readme_section  # noqa: E402
from moe_utils.studies.cognitive_mirrors.run import tables_from  # noqa: E402
from moe_utils.studies.cognitive_mirrors.settings import (  # noqa: E402
    LAYER_RANDOM,
    RANDOM,
    TOP,
    CognitiveMirrorsSettings,
)

ANSWERS = ["seven apples", "yes it is", "the red box", "a noun", "fourteen", "it rains", "no", "buy the cheap one"]


def tiny_cogqa(folder, records: int = 3) -> None:
    """CogQA's two files in ``folder``: ``records`` main questions per split, one sub-question per function each."""
    for split, (name, _) in FILES.items():
        data = [
            {
                "question": f"Question {q} of the {split} split: what happens to the apples?",
                "answer": "seven",
                "generated": [
                    {"subquestion": f"Step {s} asks about {f.lower()}?", "answer": ANSWERS[s], "cognitive_skill": f}
                    for s, f in enumerate(FUNCTIONS)
                ],
            }
            for q in range(records)
        ]
        (folder / name).write_text(json.dumps(data))


def word_tokenizer(texts: list[str]):
    """A whitespace word-level tokenizer over ``texts`` that adds its own BOS, as Llama's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = sorted({w for t in texts for w in pre_tokenizers.Whitespace().pre_tokenize_str(t) for w in [w[0]]})
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_llama(vocab: int):
    """A tiny random Llama with room for the paper's long prompt."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cogqa")
    tiny_cogqa(folder)
    items = load_cogqa("train", folder / FILES["train"][0])[0] + load_cogqa("test", folder / FILES["test"][0])[0]
    tokenizer = word_tokenizer([i.prompt + " " + i.answer for i in items])
    return folder, items, tokenizer, tiny_llama(len(tokenizer))


def test_teacher_forced_log_prob_and_exact_match_equal_a_manual_computation(tiny):
    _, items, tokenizer, model = tiny
    picked = items[:3]
    rows = answer_rows(tokenizer, [i.prompt for i in picked], [i.answer for i in picked], lambda ids: [0])
    scores = teacher_forced(model, rows, features=True, batch_size=2)
    for n in range(len(picked)):
        ids = torch.tensor([rows.ids[n]])
        with torch.no_grad():
            logp = model(ids).logits[0].float().log_softmax(-1)  # [T, vocab]
        s = rows.start[n]
        target = ids[0, s:]
        expected = logp[s - 1 : -1].gather(1, target[:, None]).mean()
        assert float(scores.logprob[n]) == pytest.approx(float(expected), abs=1e-4)
        assert bool(scores.exact[n]) == bool((logp[s - 1 : -1].argmax(-1) == target).all())
        assert rows.ids[n][0] == tokenizer.bos_token_id and rows.picked[n] == [s]
    assert scores.features.shape == (3, 3, 4, 8)  # [items, layers, heads, d_head]
    ones = teacher_forced(model, rows, torch.ones(3, 4), batch_size=3)
    assert torch.allclose(ones.logprob, scores.logprob, atol=1e-5)  # batching and a mask of ones change nothing
    masked = teacher_forced(model, rows, head_mask(3, 4, [0, 5, 10]), batch_size=3)
    assert not torch.allclose(masked.logprob, scores.logprob)


def test_head_mask_scales_the_named_heads_by_the_papers_factor():
    mask = head_mask(2, 3, [1, 5])
    assert (
        mask.shape == (2, 3)
        and mask[0, 1] == mask[1, 2] == pytest.approx(1e-4)
        and mask.sum() == pytest.approx(4 + 2e-4)
    )


def test_the_answer_token_stand_in_takes_the_rarest_content_tokens(tiny):
    _, _, tokenizer, _ = tiny
    pick = token_picker(tokenizer, ["seven apples", "seven apples", "the red box", "no"], 1)
    ids = tokenizer("seven apples", add_special_tokens=False)["input_ids"]
    assert pick(ids) == [0] or pick(ids) == [1]  # both words appear in two answers: the earlier one
    assert token_picker(tokenizer, ["seven apples", "seven", "seven"], 1)(ids) == [1]  # "apples" is the rarer
    assert token_picker(tokenizer, ["seven apples"], 5)(ids) == [0, 1]  # fewer content tokens than k: all, in order


def test_the_whole_pipeline_runs_on_a_tiny_cogqa_file(tiny):
    folder, _, tokenizer, model = tiny
    settings = CognitiveMirrorsSettings(profile="quick", cogqa=str(folder), epochs=3, n_boot=20, batch_size=4)
    tables = tables_from(cognitive_mirrors(model, tokenizer, settings, log=lambda *_: None), settings)
    layers, heads = tables.info["layers"], tables.info["heads"]
    assert (layers, heads) == (3, 4)
    assert set(tables.margins["function"]) <= set(FUNCTIONS) and set(tables.accuracy["classifier"]) >= {"probe"}
    assert len(tables.accuracy) == 3 and tables.accuracy["n"].iloc[0] == tables.info["evaluation sub-questions (test)"]
    for function, part in tables.heads.groupby("function"):
        top = {(r.layer, r.head) for r in part[part.condition == TOP].itertuples()}
        assert 1 <= len(top) < layers * heads
        for condition in (RANDOM, LAYER_RANDOM):
            for _, draw in part[part.condition == condition].groupby("draw"):
                chosen = {(r.layer, r.head) for r in draw.itertuples()}
                assert len(chosen) == len(top) and not chosen & top, (function, condition)
    share = tables.importance.groupby(["method", "function"])["share"].sum()
    assert np.allclose(share, 1.0)  # each map's shares sum to 1
    assert tables.elbow["heads"].min() >= 1
    assert tables.margins["p (Holm)"].dropna().between(0, 1).all()
    assert (tables.margins.dropna(subset=["p"])["p (Holm)"] >= tables.margins.dropna(subset=["p"])["p"] - 1e-12).all()
    assert len(tables.depth) == 2 * (len(FUNCTIONS) + 1)
    tables.info["model"] = "tiny"
    text = findings(tables) + readme_section({"tiny": tables})
    assert "shuffled-label probe" in text and "Holm" in text


def test_holm_adjusts_step_down_and_mean_test_matches_a_t_test():
    assert np.allclose(holm([0.01, 0.04, 0.03, float("nan")])[:3], [0.03, 0.06, 0.06])
    assert np.isnan(holm([0.2, float("nan")])[1])
    t = mean_test([1.0, 2.0, 3.0, 4.0])
    assert t["mean"] == 2.5 and t["p"] == pytest.approx(0.0305, abs=1e-3) and t["low"] < 2.5 < t["high"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"cogqa": "/no/such/folder"}, "COGQA='/no/such/folder' is not allowed"),
        ({"epochs": 0}, "EPOCHS=0 is not allowed"),
        ({"top_tokens": -1}, "TOP_TOKENS=-1 is not allowed"),
        ({"dtype": "int8"}, "DTYPE='int8' is not allowed"),
    ],
)
def test_bad_parameters_are_one_line_naming_the_parameter(bad, message):
    with pytest.raises(MoeError) as err:
        CognitiveMirrorsSettings(**bad)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
