"""Tests for moe_utils.corpora: byte tokens, splits, budgets and the three domain loaders."""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest
import torch

from moe_utils.datasets import corpora
from moe_utils.errors import MoeError
from moe_utils.io import paths

FAKE_VALID = (
    " \n = Alpha = \n \n alpha-one first paragraph . \n \n = = Section = = \n \n alpha-two second paragraph . \n \n"
)
FAKE_TEST = " \n = Beta = \n \n beta-one paragraph with <unk> . \n \n = Gamma = \n \n gamma-one paragraph . \n"


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    """A mirror folder holding a tiny wikitext-2/{valid,test}.txt, named by MOE_DATA_MIRROR."""
    folder = tmp_path / "mirror" / "wikitext-2"
    folder.mkdir(parents=True)
    (folder / "valid.txt").write_text(FAKE_VALID, encoding="utf-8")
    (folder / "test.txt").write_text(FAKE_TEST, encoding="utf-8")
    monkeypatch.setenv(paths.MIRROR_ENV, str(tmp_path / "mirror"))
    return folder


def test_encode_bytes_round_trip():
    text = "def f(x):\n    return x ≥ 2  # ünïcode, 数学\n"
    tokens = corpora.encode_bytes(text)
    assert tokens.dtype == torch.long and tokens.dim() == 1
    assert len(tokens) == len(text.encode("utf-8")) > len(text)
    assert int(tokens.min()) >= 0 and int(tokens.max()) < corpora.BYTE_VOCAB_SIZE
    assert corpora.decode_bytes(tokens) == text
    assert len(corpora.encode_bytes("")) == 0


def test_split_documents_deterministic_and_disjoint():
    docs = [f"doc {i}\n" for i in range(50)]
    train, held = corpora.split_documents(docs, 0.2, seed=3)
    assert (train, held) == corpora.split_documents(docs, 0.2, seed=3)
    assert len(held) == 10 and len(train) == 40
    assert not set(train) & set(held) and sorted(train + held) == sorted(docs)
    assert corpora.split_documents(docs, 0.2, seed=4) != (train, held)
    with pytest.raises(MoeError):
        corpora.split_documents(docs, 1.5, seed=3)


def test_sample_lm_batch_shapes_and_shift():
    tokens = torch.arange(100, dtype=torch.uint8)
    x, y = corpora.sample_lm_batch(tokens, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))
    x2, _ = corpora.sample_lm_batch(tokens, 4, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(MoeError):
        corpora.sample_lm_batch(tokens[:8], 1, 8, torch.Generator())


def test_wikitext_from_fake_mirror(fake_mirror):
    text = corpora.load_domain_texts("wikipedia", seed=0)
    assert text.info["source"] == "mirror"
    assert sorted(text.documents) == sorted(
        [
            " alpha-one first paragraph . \n alpha-two second paragraph . \n",
            " beta-one paragraph with <unk> . \n",
            " gamma-one paragraph . \n",
        ]
    )
    assert not text.info["files"]["valid.txt"]["matches_reference_sha256"]


def test_missing_mirror_file_is_one_line_error(fake_mirror):
    (fake_mirror / "test.txt").unlink()
    with pytest.raises(MoeError) as caught:
        corpora.load_domain_texts("wikipedia", seed=0)
    message = str(caught.value)
    assert "\n" not in message
    assert "wikitext-2/test.txt" in message and paths.MIRROR_ENV in message and "download" in message


def test_unknown_domain_rejected():
    with pytest.raises(MoeError):
        corpora.load_domain_texts("reddit", seed=0)


def test_stdlib_loader_deterministic_and_clean():
    first = corpora.load_domain_texts("github", seed=1, max_chars=50_000)
    second = corpora.load_domain_texts("github", seed=1, max_chars=50_000)
    assert first.documents == second.documents and first.n_chars == 50_000
    files = first.info["files"]
    assert len(files) > 100 and files == sorted(files)
    for name in files:
        parts = name.split("/")
        assert not set(parts[:-1]) & corpora.STDLIB_EXCLUDED_DIRS and name.endswith(".py")
    assert any("def " in doc for doc in first.documents)


def test_build_domain_corpus_equal_budgets(fake_mirror):
    corpus = corpora.build_domain_corpus(
        ("wikipedia", "github"), tokens_per_domain=60, held_out_tokens_per_domain=30, seed=0
    )
    assert set(corpus.train) == {"wikipedia", "github"}
    for domain in corpus.train:
        assert corpus.train[domain].dtype == torch.uint8 and len(corpus.train[domain]) == 60
        assert len(corpus.held_out[domain]) == 30
    assert list(corpus.record["train_tokens"]) == [60, 60]
    wiki_train = corpora.decode_bytes(corpus.train["wikipedia"])
    wiki_held = corpora.decode_bytes(corpus.held_out["wikipedia"])
    for marker in ("alpha-", "beta-", "gamma-"):  # no article in both parts
        assert not (marker in wiki_train and marker in wiki_held)
    again = corpora.build_domain_corpus(
        ("wikipedia", "github"), tokens_per_domain=60, held_out_tokens_per_domain=30, seed=0
    )
    assert torch.equal(again.train["github"], corpus.train["github"])
    with pytest.raises(MoeError, match="too few"):
        corpora.build_domain_corpus(("wikipedia",), tokens_per_domain=10_000, held_out_tokens_per_domain=0, seed=0)


@pytest.mark.skipif(importlib.util.find_spec("mathematics_dataset") is None, reason="mathematics_dataset not installed")
def test_dm_generation_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PROCESSED_DIR", tmp_path)
    random_state, numpy_state = random.getstate(), np.random.get_state()
    kwargs = dict(examples_per_module=12, modules=["arithmetic__add_or_sub", "numbers__is_prime"])
    first = corpora.generate_dm_mathematics(5, **kwargs)
    assert not first.info["from_cache"] and first.info["modules_used"] == kwargs["modules"]
    assert len(first.documents) == 24 and all(d.startswith("Q: ") and "\nA: " in d for d in first.documents)
    cached = corpora.generate_dm_mathematics(5, **kwargs)
    assert cached.info["from_cache"] and cached.documents == first.documents
    fresh = corpora.generate_dm_mathematics(5, use_cache=False, **kwargs)
    assert fresh.documents == first.documents
    other = corpora.generate_dm_mathematics(6, use_cache=False, **kwargs)
    assert other.documents != first.documents
    assert random.getstate() == random_state and np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_held_out_documents_are_capped_and_labelled_byte_by_byte(fake_mirror):
    plain = corpora.build_domain_corpus(("github",), tokens_per_domain=2000, held_out_tokens_per_domain=3000, seed=0)
    capped = corpora.build_domain_corpus(
        ("github",), tokens_per_domain=2000, held_out_tokens_per_domain=3000, seed=0, held_out_doc_bytes=100
    )
    assert (
        len(capped.train["github"]) == 2000
    )  # the train budget is unchanged (it starts after more held-out documents)
    ids, held = capped.held_out_doc_ids["github"], capped.held_out["github"]
    assert len(ids) == len(held) == 3000 and bool((ids[1:] >= ids[:-1]).all())
    counts = torch.bincount(ids)
    assert int(counts.max()) <= 100 and len(counts) >= 30  # 3,000 bytes of at most 100 bytes each: 30 documents or more
    assert (
        len(plain.held_out_doc_ids["github"]) == 3000
        and int(torch.bincount(plain.held_out_doc_ids["github"]).max()) > 100
    )
    train_text = corpora.decode_bytes(capped.train["github"])
    for d in range(len(counts) - 1):  # whole held-out documents (the last may be cut) never reappear in train
        piece = corpora.decode_bytes(held[ids == d])
        assert len(piece) < 40 or piece not in train_text
    with pytest.raises(MoeError, match="held_out_doc_bytes=0"):
        corpora.build_domain_corpus(
            ("github",), tokens_per_domain=10, held_out_tokens_per_domain=10, held_out_doc_bytes=0
        )
