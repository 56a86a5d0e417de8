"""Eight natural-language task families for pretrained LMs, one per cognitive function of "Cognitive Mirrors".

Every item is a prompt and 2-4 candidate continuations, one of them right; a model is scored by each candidate's
log-probability after the prompt. Items are generated deterministically from ``numpy.random.default_rng([seed,
family])``; each family's prompts are distinct, and a hash of the prompt puts it in the selection or evaluation half.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import MoeError, check_positive

FAMILIES = (
    "Knowledge Recall",
    "Retrieval",
    "Logical Reasoning",
    "Decision-making",
    "Semantic Understanding",
    "Syntactic Understanding",
    "Inference",
    "Math Calculation",
)

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Japan": "Tokyo",
    "Russia": "Moscow",
    "Egypt": "Cairo",
    "England": "London",
    "Greece": "Athens",
    "China": "Beijing",
    "Canada": "Ottawa",
    "Austria": "Vienna",
    "Ireland": "Dublin",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Portugal": "Lisbon",
    "Poland": "Warsaw",
    "Cuba": "Havana",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Thailand": "Bangkok",
    "Turkey": "Ankara",
    "Argentina": "Buenos Aires",
    "Hungary": "Budapest",
    "Finland": "Helsinki",
    "Denmark": "Copenhagen",
    "India": "New Delhi",
    "Australia": "Canberra",
    "Mexico": "Mexico City",
    "South Korea": "Seoul",
}
LANGUAGES = {
    "France": "French",
    "Germany": "German",
    "Italy": "Italian",
    "Spain": "Spanish",
    "Japan": "Japanese",
    "Russia": "Russian",
    "China": "Chinese",
    "Greece": "Greek",
    "Portugal": "Portuguese",
    "Poland": "Polish",
    "Sweden": "Swedish",
    "Turkey": "Turkish",
    "Finland": "Finnish",
    "Hungary": "Hungarian",
    "Norway": "Norwegian",
    "Denmark": "Danish",
    "Thailand": "Thai",
    "Korea": "Korean",
    "the Netherlands": "Dutch",
    "Brazil": "Portuguese",
}
NAMES = (
    "Anna",
    "Ben",
    "Carl",
    "Dora",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Iris",
    "Jack",
    "Kate",
    "Leo",
    "Mia",
    "Nick",
    "Olga",
    "Paul",
    "Rosa",
    "Sam",
    "Tina",
    "Victor",
)
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "brown", "pink")
OBJECTS = ("box", "car", "hat", "ball", "cup", "bag", "book", "kite")
CATEGORIES = {
    "animal": ("dog", "cat", "horse", "lion", "tiger", "rabbit", "sheep", "mouse", "wolf", "bear", "monkey", "goat"),
    "fruit": (
        "apple",
        "banana",
        "orange",
        "pear",
        "grape",
        "cherry",
        "lemon",
        "peach",
        "plum",
        "mango",
        "melon",
        "kiwi",
    ),
    "tool": (
        "hammer",
        "saw",
        "wrench",
        "drill",
        "shovel",
        "axe",
        "chisel",
        "screwdriver",
        "rake",
        "pliers",
        "file",
        "spade",
    ),
    "vehicle": (
        "car",
        "bus",
        "truck",
        "train",
        "bicycle",
        "boat",
        "plane",
        "tractor",
        "taxi",
        "van",
        "ship",
        "scooter",
    ),
}
NOUNS = {  # singular -> plural, for subject-verb agreement across an attractor
    "key": "keys",
    "dog": "dogs",
    "teacher": "teachers",
    "book": "books",
    "car": "cars",
    "girl": "girls",
    "boy": "boys",
    "doctor": "doctors",
    "window": "windows",
    "bird": "birds",
    "student": "students",
    "flower": "flowers",
    "author": "authors",
    "painting": "paintings",
    "player": "players",
    "house": "houses",
}
PLACES = (
    "the cabinet",
    "the river",
    "the old house",
    "the school",
    "the garden",
    "the station",
    "the table",
    "the bridge",
    "the museum",
    "the park",
)
ADJECTIVES = {"old": "young", "tall": "short", "fast": "slow", "heavy": "light"}  # comparative pairs for inference
CATEGORY_WORDS = {"blicket": "red", "dax": "round", "wug": "soft", "zorp": "heavy", "fep": "shiny", "toma": "loud"}


@dataclass(frozen=True)
class Item:
    """One prompt, its candidate continuations and the index of the right one."""

    family: int  # index into FAMILIES
    prompt: str
    candidates: tuple[str, ...]
    answer: int
    template: str = ""  # the fixed text the prompt was written from, its slots in braces (the format control's label)


def _choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _options(rng, right: str, pool, n: int) -> tuple[tuple[str, ...], int]:
    """``right`` and n-1 other members of ``pool``, shuffled; (candidates, index of right)."""
    others = [p for p in dict.fromkeys(pool) if p != right]
    picked = [right] + [others[i] for i in rng.choice(len(others), n - 1, replace=False)]
    order = rng.permutation(n)
    return tuple(picked[i] for i in order), int(np.argmax(order == 0))


def gen_recall(rng) -> tuple[str, tuple[str, ...], int, str]:
    """World knowledge: a country's capital or language."""
    if rng.random() < 0.6:
        country = _choice(rng, list(CAPITALS))
        template = _choice(rng, ("The capital of {c} is", "{c}'s capital city is", "The capital city of {c} is called"))
        candidates, answer = _options(rng, CAPITALS[country], CAPITALS.values(), 4)
        return template.format(c=country), tuple(" " + c for c in candidates), answer, template
    country = _choice(rng, list(LANGUAGES))
    template = _choice(rng, ("The main language spoken in {c} is", "Most people in {c} speak"))
    candidates, answer = _options(rng, LANGUAGES[country], LANGUAGES.values(), 4)
    return template.format(c=country), tuple(" " + c for c in candidates), answer, template


def gen_retrieval(rng) -> tuple[str, tuple[str, ...], int, str]:
    """Read a fact back from the context: who owns the object of a given colour."""
    names = [NAMES[i] for i in rng.choice(len(NAMES), 3, replace=False)]
    colours = [COLOURS[i] for i in rng.choice(len(COLOURS), 3, replace=False)]
    thing = _choice(rng, OBJECTS)
    context = " ".join(f"{n} has a {c} {thing}." for n, c in zip(names, colours))
    asked = int(rng.integers(3))
    template = "{name} has a {colour} {thing}. (×3) The {colour} {thing} belongs to"
    return f"{context} The {colours[asked]} {thing} belongs to", tuple(" " + n for n in names), asked, template


def gen_logic(rng) -> tuple[str, tuple[str, ...], int, str]:
    """A syllogism about made-up kinds: all / no A are B; x is an A; is x B?"""
    kind = _choice(rng, list(CATEGORY_WORDS))
    quality, name = CATEGORY_WORDS[kind], _choice(rng, NAMES)
    positive = rng.random() < 0.5
    rule = f"All {kind}s are {quality}." if positive else f"No {kind}s are {quality}."
    prompt = f"{rule} {name} is a {kind}. Question: is {name} {quality}? Answer (Yes or No):"
    template = "{All|No} {kind}s are {quality}. {name} is a {kind}. Question: is {name} {quality}? Answer (Yes or No):"
    return prompt, (" Yes", " No"), 0 if positive else 1, template


def gen_decision(rng) -> tuple[str, tuple[str, ...], int, str]:
    """Pick the option that the stated goal prefers (cheaper to save money, larger to get the most)."""
    a, b = (int(x) for x in rng.choice(np.arange(2, 60), 2, replace=False))
    if rng.random() < 0.5:
        template = "Option A costs {a} dollars and option B costs {b} dollars. To save money, I choose option"
        best = 0 if a < b else 1
    else:
        template = "Option A gives {a} apples and option B gives {b} apples. To get the most apples, I choose option"
        best = 0 if a > b else 1
    return template.format(a=a, b=b), (" A", " B"), best, template


def gen_semantic(rng) -> tuple[str, tuple[str, ...], int, str]:
    """Word meaning: the category a word belongs to."""
    category = _choice(rng, list(CATEGORIES))
    word = _choice(rng, CATEGORIES[category])
    template = _choice(
        rng, ("A {w} is a kind of", 'The word "{w}" names a kind of', "Question: what is a {w}? Answer: a kind of")
    )
    names = list(CATEGORIES)
    return template.format(w=word), tuple(" " + n for n in names), names.index(category), template


def gen_syntax(rng) -> tuple[str, tuple[str, ...], int, str]:
    """Subject-verb agreement across a prepositional phrase whose noun has the other number."""
    noun = _choice(rng, list(NOUNS))
    plural = rng.random() < 0.5
    attractor = _choice(rng, [n for n in NOUNS if n != noun])
    subject = NOUNS[noun] if plural else noun
    other = attractor if plural else NOUNS[attractor]
    prompt = f"The {subject} of the {other} near {_choice(rng, PLACES)}"
    return prompt, (" is", " are"), 1 if plural else 0, "The {subject} of the {other} near {place}"


def gen_inference(rng) -> tuple[str, tuple[str, ...], int, str]:
    """Transitive inference from two comparisons given in shuffled order."""
    names = [NAMES[i] for i in rng.choice(len(NAMES), 3, replace=False)]  # names[0] > names[1] > names[2]
    adjective = _choice(rng, list(ADJECTIVES))
    premises = [f"{names[0]} is {adjective}er than {names[1]}.", f"{names[1]} is {adjective}er than {names[2]}."]
    if rng.random() < 0.5:
        premises.reverse()
    most = rng.random() < 0.5
    question = (
        f"So the {adjective}est of the three is" if most else f"So the {ADJECTIVES[adjective]}est of the three is"
    )
    order = rng.permutation(3)
    candidates = tuple(" " + names[i] for i in order)
    template = "{a} is {adj}er than {b}. (×2) So the {adj}est of the three is"
    return " ".join(premises) + " " + question, candidates, int(np.argmax(order == (0 if most else 2))), template


def gen_math(rng) -> tuple[str, tuple[str, ...], int, str]:
    """One-digit addition or subtraction with a one-digit result, after one worked example."""
    if rng.random() < 0.5:
        a = int(rng.integers(0, 10))
        b = int(rng.integers(0, 10 - a))
        text, result = f"{a} + {b} =", a + b
    else:
        a = int(rng.integers(0, 10))
        b = int(rng.integers(0, a + 1))
        text, result = f"{a} - {b} =", a - b
    candidates, answer = _options(rng, str(result), [str(d) for d in range(10)], 4)
    return (
        f"2 + 3 = 5. 8 - 6 = 2. {text}",
        tuple(" " + c for c in candidates),
        answer,
        "2 + 3 = 5. 8 - 6 = 2. {a} {op} {b} =",
    )


GENERATORS = (gen_recall, gen_retrieval, gen_logic, gen_decision, gen_semantic, gen_syntax, gen_inference, gen_math)


def in_selection_half(prompt: str) -> bool:
    """A prompt's half (selection or evaluation), from a hash of its text: the two halves never share a prompt."""
    return hashlib.sha256(prompt.encode()).digest()[0] % 2 == 0


def make_items(seed: int, per_family: int, max_tries: int = 200) -> list[Item]:
    """``per_family`` distinct items per family (fewer when a family runs out of distinct prompts), in family order."""
    check_positive("per_family", per_family)
    items = []
    for family, generate in enumerate(GENERATORS):
        rng = np.random.default_rng([int(seed), family])
        seen: dict[str, Item] = {}
        tries = 0
        while len(seen) < per_family and tries < per_family * max_tries:
            prompt, candidates, answer, template = generate(rng)
            tries += 1
            if prompt not in seen:
                seen[prompt] = Item(family, prompt, candidates, answer, template)
        if len(seen) < 2:
            raise MoeError(f"family {FAMILIES[family]} produced fewer than 2 distinct prompts")
        items += list(seen.values())
    return items


def split_halves(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(selection half, evaluation half) by the prompt hash."""
    return [i for i in items if in_selection_half(i.prompt)], [i for i in items if not in_selection_half(i.prompt)]
