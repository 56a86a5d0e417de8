"""CogQA, the data of *Cognitive Mirrors* (arXiv:2512.10978): multi-step questions decomposed into sub-questions, each
with a reference sub-answer and the cognitive function it needs, and the paper's chain-of-thought prompt.

The two files come from the authors' repository (github.com/sihuo-design/CognitiveMirrors, folder ``dataset/``, at
the pinned commit ``COMMIT``), checked by sha256: from ``$MOE_DATA_MIRROR/cogqa/`` when set, else downloaded once into
``data/raw/cogqa/`` (git-ignored). The repository states no licence, so the project downloads the files and never
commits them. Sub-questions whose label is none of the paper's eight functions (six single items) are dropped and
counted. The prompt is ``utils.py``'s ``cot_prompt`` at that commit, word for word: the main question, the earlier
sub-questions *labelled Retrieval* with their answers (the paper's code keeps only those), and the sub-question.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import MoeError, check_choice
from ..io import paths
from ..io.atomic import atomic_path
from ..io.checksums import sha256_of

COMMIT = "d4163f0148836512fbe2b3f63a055d640774948b"
URL = "https://raw.githubusercontent.com/sihuo-design/CognitiveMirrors/{commit}/dataset/{name}"
FILES = {
    "train": ("balanced_cot_train_data.json", "ee5894c59c07bd73dbb36bed75bc453ab8feff5446972a00ee26ca0b83d06587"),
    "test": ("balanced_cot_test_data.json", "c4d9d2926c03046e629157f7dc11fe86d9ca7f4fd3f4d3a673067f27f2eb3cbf"),
}
FUNCTIONS = (
    "Retrieval",
    "Knowledge Recall",
    "Semantic Understanding",
    "Syntactic Understanding",
    "Math Calculation",
    "Inference",
    "Logical Reasoning",
    "Decision-making",
)  # the paper's eight functions: information extraction (first four in its code's grouping) and higher reasoning

SYSTEM_ROLE = (
    "\nYou are an expert in analytical and logical reasoning. You will be given a main question and prior knowledge "
    "in chain-of-thought (CoT) format.\nYour task is to answer a follow-up subquestion using the information provided.\n"
)

PROMPT = """
{system_role}
Here is the main question:
<main_question>
{question}
</main_question>

Here is the prior knowledge in chain-of-thought (CoT) format:
<prior_knowledge>
{cot}
</prior_knowledge>

Here is the subquestion:
<subquestion>
{subquestion}
</subquestion>

Instructions:
- Answer the subquestion carefully.
- You can use the information in the prior_knowledge to help you answer the subquestion.
- Your response should be clear and concise.
- Stick to factual reasoning based on provided CoT.
- Do not include any explanation, commentary, or code.
- Do not output anything after the closing square bracket `]`.

Only output your final answer using this format:
[
    {{"answer": "<Your answer here>"}}
]

Your answer:
"""


@dataclass(frozen=True)
class SubQuestion:
    """One CogQA sub-question as the paper prompts it."""

    question: int  # index of its main question in the split
    step: int  # its position among the main question's sub-questions (from 0)
    function: str  # one of FUNCTIONS
    prompt: str  # the paper's chain-of-thought prompt
    answer: str  # the reference sub-answer (a number in the file as the prompt writes it: str())


def cot_prompt(question: str, generated: list[dict], step: int) -> str:
    """The paper's prompt for sub-question ``step`` of a main question (``utils.cot_prompt``, word for word)."""
    cot = ""
    if step > 0:
        for k in range(step):
            if generated[k]["cognitive_skill"] != "Retrieval":
                continue  # the paper's code carries only the Retrieval sub-answers forward
            cot += f"Q{k + 1}: {generated[k]['subquestion']}\nA{k + 1}: {generated[k]['answer']}\n"
    else:
        cot += "No prior knowledge.\n"
    return PROMPT.format(
        system_role=SYSTEM_ROLE, question=question, cot=cot.strip(), subquestion=generated[step]["subquestion"]
    )


def download(split: str, folder: Path) -> Path:
    """The split's file in ``folder``, downloaded from the pinned commit when missing or wrong; sha256 checked."""
    name, sha = FILES[split]
    target = folder / name
    if target.is_file() and sha256_of(target) == sha:
        return target
    url = URL.format(commit=COMMIT, name=name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as error:
        raise MoeError(
            f"no CogQA {split} file ({type(error).__name__}); set {paths.MIRROR_ENV} to a folder holding cogqa/{name}, "
            f"or connect to the internet so it can be downloaded into {folder}"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)
    if sha256_of(target) != sha:
        target.unlink()
        raise MoeError(f"the downloaded CogQA {split} file does not match its sha256 {sha[:12]}…; it was removed")
    return target


def cogqa_file(split: str) -> Path:
    """The split's checked file: the mirror's ``cogqa/`` copy, else the downloaded one."""
    check_choice("split", split, tuple(FILES))
    name, sha = FILES[split]
    mirror = paths.mirror_dir()
    if mirror is not None and (mirror / "cogqa" / name).is_file():
        found = mirror / "cogqa" / name
        if sha256_of(found) != sha:
            raise MoeError(f"{found} does not match CogQA's sha256 {sha[:12]}…; replace it with the authors' file")
        return found
    return download(split, paths.RAW_DIR / "cogqa")


def parse_cogqa(records: list[dict]) -> tuple[list[SubQuestion], Counter]:
    """Every sub-question of ``records`` (CogQA's JSON list) labelled with one of FUNCTIONS, and a count of the
    labels dropped."""
    items, dropped = [], Counter()
    for q, record in enumerate(records):
        generated = record["generated"]
        for step, sub in enumerate(generated):
            if sub["cognitive_skill"] not in FUNCTIONS:
                dropped[sub["cognitive_skill"]] += 1
                continue
            items.append(
                SubQuestion(
                    q, step, sub["cognitive_skill"], cot_prompt(record["question"], generated, step), str(sub["answer"])
                )
            )
    return items, dropped


def load_cogqa(split: str, path: Path | None = None) -> tuple[list[SubQuestion], Counter]:
    """CogQA's ``split`` ("train" | "test") as sub-questions, and the dropped labels; ``path`` reads another file of
    the same shape (e.g. a test's tiny one)."""
    source = Path(path) if path is not None else cogqa_file(split)
    return parse_cogqa(json.loads(source.read_text()))
