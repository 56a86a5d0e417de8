"""The natural-language task families of notebook 08."""

from __future__ import annotations

from collections import Counter

from moe_utils.datasets.language_tasks import FAMILIES, make_items, split_halves


def test_families_are_deterministic_distinct_and_large_enough():
    items = make_items(0, 150)
    assert items == make_items(0, 150)
    assert items != make_items(1, 150)
    counts = Counter(i.family for i in items)
    assert sorted(counts) == list(range(len(FAMILIES)))
    assert min(counts.values()) >= 100, counts  # at least 100 prompts per function, as the issue asks
    for family in range(len(FAMILIES)):
        prompts = [i.prompt for i in items if i.family == family]
        assert len(prompts) == len(set(prompts))
    for item in items:
        assert 2 <= len(item.candidates) <= 4 and 0 <= item.answer < len(item.candidates)
        assert len(set(item.candidates)) == len(item.candidates)
        assert all(c.startswith(" ") for c in item.candidates)


def test_answers_are_not_always_in_one_position():
    items = make_items(0, 150)
    for family in range(len(FAMILIES)):
        answers = Counter(i.answer for i in items if i.family == family)
        assert len(answers) > 1, FAMILIES[family]
        assert max(answers.values()) / sum(answers.values()) < 0.75, FAMILIES[family]


def test_halves_share_no_prompt():
    selection, evaluation = split_halves(make_items(0, 60))
    assert selection and evaluation
    assert not {i.prompt for i in selection} & {i.prompt for i in evaluation}


def test_every_prompt_is_written_from_its_familys_templates():
    items = make_items(0, 150)
    templates = {f: Counter(i.template for i in items if i.family == f) for f in range(len(FAMILIES))}
    counts = {FAMILIES[f]: len(t) for f, t in templates.items()}
    assert counts == {
        "Knowledge Recall": 5,
        "Retrieval": 1,
        "Logical Reasoning": 1,
        "Decision-making": 2,
        "Semantic Understanding": 3,
        "Syntactic Understanding": 1,
        "Inference": 1,
        "Math Calculation": 1,
    }
    every = [t for f in templates.values() for t in f]
    assert len(every) == len(set(every))  # no template is shared by two families
    recall = [i for i in items if i.template == "The capital of {c} is"]
    assert recall and all(i.prompt.startswith("The capital of ") and i.prompt.endswith(" is") for i in recall)
