"""CogQA as a dataset of the project: the paper's prompt word for word, stray labels dropped and counted, files
checked by sha256."""

from __future__ import annotations

import json

import pytest

from moe_utils.datasets import cogqa
from moe_utils.errors import MoeError
from moe_utils.io import paths

RECORDS = [
    {
        "question": "Ann has 3 apples and buys 2 more. How many?",
        "answer": "5",
        "generated": [
            {"subquestion": "How many apples at first?", "answer": "3", "cognitive_skill": "Retrieval"},
            {"subquestion": "Is buying adding?", "answer": "yes", "cognitive_skill": "Knowledge Recall"},
            {"subquestion": "How many now?", "answer": "5", "cognitive_skill": "Math Calculation"},
            {"subquestion": "Was that hard?", "answer": "no", "cognitive_skill": "Self-Evaluation"},
        ],
    }
]


def test_the_prompt_carries_only_earlier_retrieval_answers_and_stray_labels_are_dropped(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(RECORDS))
    items, dropped = cogqa.load_cogqa("test", path=path)
    assert [i.function for i in items] == ["Retrieval", "Knowledge Recall", "Math Calculation"]
    assert dropped == {"Self-Evaluation": 1}
    first, _, third = items
    assert "<prior_knowledge>\nNo prior knowledge.\n</prior_knowledge>" in first.prompt
    assert "Q1: How many apples at first?\nA1: 3\n</prior_knowledge>" in third.prompt  # Retrieval only: no Q2
    assert "Is buying adding?" not in third.prompt
    assert third.prompt.rstrip().endswith("Your answer:") and '{"answer": "<Your answer here>"}' in third.prompt
    assert (third.question, third.step, third.answer) == (0, 2, "5")


def test_a_mirror_file_that_is_not_the_authors_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "cogqa").mkdir()
    (tmp_path / "cogqa" / cogqa.FILES["test"][0]).write_text("[]")
    monkeypatch.setenv(paths.MIRROR_ENV, str(tmp_path))
    with pytest.raises(MoeError, match="does not match CogQA's sha256"):
        cogqa.cogqa_file("test")
    with pytest.raises(MoeError, match="split='dev' is not allowed"):
        cogqa.cogqa_file("dev")


@pytest.mark.skipif(paths.mirror_dir() is None, reason="no MOE_DATA_MIRROR: CogQA's files are not here")
def test_the_real_files_have_the_papers_counts():
    train, dropped = cogqa.load_cogqa("train")
    test, none = cogqa.load_cogqa("test")
    assert (len(train), sum(dropped.values()), len(test), sum(none.values())) == (2683, 6, 713, 0)
    assert {i.function for i in test} == set(cogqa.FUNCTIONS)
