"""Eight generated prompt -> one-character-answer task families, one per cognitive function of "Cognitive Mirrors".

Every example is a short ASCII prompt whose answer is a single character. Prompts are left-padded with byte 0 to
``seq_len`` so the last position is always where the answer is read out (a causal LM predicts it there).
Each family is generated from ``numpy.random.default_rng([seed, family])``; an example goes to the held-out split
iff a hash of its prompt says so, so the two splits never share a prompt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..errors import MoeError, check_positive

TASKS = (
    "Knowledge Recall",
    "Retrieval",
    "Logical Reasoning",
    "Decision-making",
    "Semantic Understanding",
    "Syntactic Understanding",
    "Inference",
    "Math Calculation",
)
PAD = 0
ASCII_VOCAB_SIZE = 128  # ASCII
HELD_OUT_ONE_IN = 5  # a prompt is held out iff its hash is 0 mod 5 (~20%)

CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"
RELATIONS = "CHSP"  # four made-up attributes of the recall world


@dataclass
class World:
    """Facts fixed at training time (recall) and a made-up lexicon with categories (semantic)."""

    facts: dict[tuple[str, str], str]  # (entity, relation) -> digit
    entities: list[str]
    categories: dict[str, int]  # word -> category id
    words: list[str]


def make_world(seed: int, n_entities: int = 16, n_words: int = 48, n_categories: int = 4) -> World:
    """The recall facts and the semantic lexicon drawn from ``seed``."""
    rng = np.random.default_rng([seed, 100])
    names = [c + v for c in CONSONANTS for v in VOWELS]
    entities = [names[i] for i in rng.choice(len(names), n_entities, replace=False)]
    facts = {(e, r): str(int(rng.integers(0, 8))) for e in entities for r in RELATIONS}
    triples = sorted({a + v + b for a in CONSONANTS for v in VOWELS for b in CONSONANTS})
    words = [triples[i] for i in rng.choice(len(triples), n_words, replace=False)]
    categories = {w: i % n_categories for i, w in enumerate(words)}
    return World(facts, entities, categories, words)


def _letters(rng, pool: str, n: int) -> list[str]:
    return [pool[i] for i in rng.choice(len(pool), n, replace=False)]


def gen_recall(rng, world: World) -> tuple[str, str]:
    """'xk#ba.C?' -> '5': attribute C of entity ba (a fact fixed at training time); 'xk' is filler."""
    e = world.entities[rng.integers(len(world.entities))]
    r = RELATIONS[rng.integers(len(RELATIONS))]
    filler = "".join(rng.choice(list("xyzwq"), int(rng.integers(0, 5))))
    return f"{filler}#{e}.{r}?", world.facts[(e, r)]


def gen_retrieval(rng, world: World) -> tuple[str, str]:
    """'A3C7E1B9:C?' -> '7': the value of a key given in the context."""
    keys = _letters(rng, "ABCDEFGH", 4)
    values = [str(v) for v in rng.integers(0, 10, 4)]
    q = int(rng.integers(4))
    return "".join(k + v for k, v in zip(keys, values)) + f":{keys[q]}?", values[q]


def _apply(op: str, a: bool, b: bool) -> bool:
    return (a and b) if op == "&" else (a or b)


def gen_logic(rng, world: World) -> tuple[str, str]:
    """'T&~F|F?' -> 'T': a boolean expression of 3-4 literals evaluated left to right, ~ binding tightest."""
    n = int(rng.integers(3, 5))
    values = [bool(v) for v in rng.integers(0, 2, n)]
    negate = [bool(v) for v in rng.random(n) < 0.3]
    ops = [("&", "|")[i] for i in rng.integers(0, 2, n - 1)]
    lit = [v != neg for v, neg in zip(values, negate)]
    result = lit[0]
    for op, b in zip(ops, lit[1:]):
        result = _apply(op, result, b)
    text = ["~" * neg + "TF"[not v] for v, neg in zip(values, negate)]
    return "".join(t + o for t, o in zip(text, ops + ["?"])), "TF"[not result]


def gen_decision(rng, world: World) -> tuple[str, str]:
    """'>:4729?' -> 'b': which of the options a-d is best under the rule (> largest, < smallest)."""
    values = rng.choice(10, 4, replace=False)
    rule = "<>"[rng.integers(2)]
    best = int(values.argmax() if rule == ">" else values.argmin())
    return f"{rule}:{''.join(map(str, values))}?", "abcd"[best]


def gen_semantic(rng, world: World) -> tuple[str, str]:
    """'bal~kit?' -> 'Y': do two made-up words belong to the same category of the lexicon?"""
    same = bool(rng.integers(2))
    while True:
        a, b = (world.words[i] for i in rng.choice(len(world.words), 2, replace=False))
        if (world.categories[a] == world.categories[b]) == same:
            return f"{a}~{b}?", "YN"[not same]


def _balanced(rng, n_pairs: int) -> str:
    """A random well-formed string of n_pairs bracket pairs over () and []."""
    out, stack = [], []
    opened = 0
    while len(out) < 2 * n_pairs:
        can_open, can_close = opened < n_pairs, bool(stack)
        if can_open and (not can_close or rng.random() < 0.5):
            b = "(["[rng.integers(2)]
            out.append(b), stack.append(b)
            opened += 1
        else:
            out.append(")]"["([".index(stack.pop())])
    return "".join(out)


def is_balanced(text: str) -> bool:
    """True when the brackets () and [] in ``text`` are well nested."""
    stack = []
    for ch in text:
        if ch in "([":
            stack.append(ch)
        elif not stack or "([".index(stack.pop()) != ")]".index(ch):
            return False
    return not stack


def gen_syntactic(rng, world: World) -> tuple[str, str]:
    """'([])()!' -> 'Y': is the bracket string well formed? Negatives keep the bracket counts."""
    n = int(rng.integers(2, 6))
    text = _balanced(rng, n)
    if rng.integers(2):
        while is_balanced(text):
            chars = list(text)
            if rng.random() < 0.5:  # swap two positions
                i, j = rng.choice(len(chars), 2, replace=False)
                chars[i], chars[j] = chars[j], chars[i]
            else:  # change one bracket's type
                i = int(rng.integers(len(chars)))
                chars[i] = {"(": "[", "[": "(", ")": "]", "]": ")"}[chars[i]]
            text = "".join(chars)
    return f"{text}!", "YN"[not is_balanced(text)]


def gen_inference(rng, world: World) -> tuple[str, str]:
    """'q>s,p>q;p?s' -> '>': order of two items implied by shuffled premises (transitive inference)."""
    items = _letters(rng, "pqrstuvw", 3)  # items[0] > items[1] > items[2]
    premises = [f"{items[0]}>{items[1]}", f"{items[1]}>{items[2]}"]
    premises = [premises[i] for i in rng.permutation(2)]
    premises = [p if rng.random() < 0.5 else f"{p[2]}<{p[0]}" for p in premises]
    a, b = (0, 2) if rng.random() < 0.5 else (2, 0)
    return f"{','.join(premises)};{items[a]}?{items[b]}", ">" if a < b else "<"


def gen_math(rng, world: World) -> tuple[str, str]:
    """'7+5-3=' -> '9': single-digit arithmetic with 2 or 3 operands, left to right, result in 0..9."""
    n = int(rng.integers(2, 4))
    while True:
        digits = [int(v) for v in rng.integers(0, 10, n)]
        ops = ["+-"[i] for i in rng.integers(0, 2, n - 1)]
        r = digits[0]
        for op, d in zip(ops, digits[1:]):
            r = r + d if op == "+" else r - d
        if 0 <= r <= 9:
            return "".join(f"{d}{o}" for d, o in zip(digits, ops + ["="])), str(r)


GENERATORS = (gen_recall, gen_retrieval, gen_logic, gen_decision, gen_semantic, gen_syntactic, gen_inference, gen_math)
ANSWERS = ("01234567", "0123456789", "TF", "abcd", "YN", "YN", "<>", "0123456789")  # possible answers per task


def is_held_out(task: int, prompt: str) -> bool:
    """Deterministic split: a prompt is held out iff sha1(task|prompt) is 0 mod HELD_OUT_ONE_IN."""
    digest = hashlib.sha1(f"{task}|{prompt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % HELD_OUT_ONE_IN == 0


def generate_family(task: int, seed: int, n_train: int, n_held_out: int, world: World | None = None) -> dict[str, list]:
    """Unique (prompt, answer) pairs of one family split by prompt hash: {'train': [...], 'held_out': [...]}."""
    if not 0 <= task < len(TASKS):
        raise MoeError(f"task={task!r} is not allowed; it must be in 0..{len(TASKS) - 1}")
    check_positive("n_train", n_train)
    check_positive("n_held_out", n_held_out)
    world = world or make_world(seed)
    rng = np.random.default_rng([seed, task])
    quota = {"train": n_train, "held_out": n_held_out}
    # two-answer families are balanced: at most half of each split per answer
    cap = {split: (q + 1) // 2 if len(ANSWERS[task]) == 2 else q for split, q in quota.items()}
    seen, out, counts = set(), {"train": [], "held_out": []}, {}
    misses, draws = 0, 0
    while misses < 300 and draws < 20 * (n_train + n_held_out):  # stop when the family's pool looks exhausted
        draws += 1
        prompt, answer = GENERATORS[task](rng, world)
        if prompt in seen:
            misses += 1
            continue
        seen.add(prompt)
        misses = 0
        split = "held_out" if is_held_out(task, prompt) else "train"
        if len(out[split]) < quota[split] and counts.get((split, answer), 0) < cap[split]:
            out[split].append((prompt, answer))
            counts[split, answer] = counts.get((split, answer), 0) + 1
        if all(len(out[k]) == quota[k] for k in out):
            break
    return out


@dataclass
class TaskSplit:
    """Encoded examples of all families: left-padded prompts, answer bytes and family ids."""

    tokens: torch.Tensor  # [N, seq_len] int64, left-padded with PAD
    answers: torch.Tensor  # [N] int64 answer byte
    task: torch.Tensor  # [N] int64 family index
    prompts: list[str]

    def __len__(self) -> int:
        """Number of examples."""
        return len(self.prompts)

    def subset(self, index: torch.Tensor) -> TaskSplit:
        """The examples at ``index`` [M]."""
        return TaskSplit(
            self.tokens[index], self.answers[index], self.task[index], [self.prompts[i] for i in index.tolist()]
        )

    def to(self, device) -> TaskSplit:
        """The same examples with tensors on ``device``."""
        return TaskSplit(self.tokens.to(device), self.answers.to(device), self.task.to(device), self.prompts)

    def of_task(self, task: int) -> TaskSplit:
        """The examples of one family."""
        return self.subset(torch.nonzero(self.task == task).flatten())


def disjoint_halves(data: TaskSplit, seed: int) -> tuple[TaskSplit, TaskSplit]:
    """Two disjoint halves of ``data``, each family split in half at random (seeded): one to select, one to evaluate."""
    generator = torch.Generator().manual_seed(int(seed))
    first, second = [], []
    for task in torch.unique(data.task).tolist():
        index = torch.nonzero(data.task == task).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        first.append(index[: len(index) // 2])
        second.append(index[len(index) // 2 :])
    return data.subset(torch.cat(first).sort().values), data.subset(torch.cat(second).sort().values)


def encode_prompts(prompts: list[str], seq_len: int) -> torch.Tensor:
    """Left-padded ASCII codes [N, seq_len]; a prompt longer than seq_len raises a one-line MoeError."""
    out = torch.full((len(prompts), seq_len), PAD, dtype=torch.long)
    for i, p in enumerate(prompts):
        if len(p) > seq_len:
            raise MoeError(f"seq_len={seq_len!r} is not allowed; prompt {p!r} has {len(p)} characters")
        out[i, seq_len - len(p) :] = torch.tensor(list(p.encode("ascii")))
    return out


def make_task_data(
    seed: int, n_train: int, n_held_out: int, seq_len: int = 20
) -> tuple[TaskSplit, TaskSplit, pd.DataFrame]:
    """Train and held-out TaskSplits of all eight families plus a table of counts, chance and examples."""
    world = make_world(seed)
    splits = {"train": ([], [], []), "held_out": ([], [], [])}
    rows = []
    for t in range(len(TASKS)):
        family = generate_family(t, seed, n_train, n_held_out, world)
        for split, pairs in family.items():
            prompts, answers, tasks = splits[split]
            prompts += [p for p, _ in pairs]
            answers += [a for _, a in pairs]
            tasks += [t] * len(pairs)
        held_answers = pd.Series([a for _, a in family["held_out"]])
        rows.append(
            {
                "task": TASKS[t],
                "train": len(family["train"]),
                "held_out": len(family["held_out"]),
                "chance": 1 / len(ANSWERS[t]),
                "majority": held_answers.value_counts(normalize=True).max(),
                "example 1": " → ".join(family["train"][0]),
                "example 2": " → ".join(family["train"][1]),
                "example 3": " → ".join(family["held_out"][0]),
            }
        )
    out = []
    for split in ("train", "held_out"):
        prompts, answers, tasks = splits[split]
        out.append(
            TaskSplit(
                encode_prompts(prompts, seq_len), torch.tensor([ord(a) for a in answers]), torch.tensor(tasks), prompts
            )
        )
    return out[0], out[1], pd.DataFrame(rows)


def balanced_batch(data: TaskSplit, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [B, S], answers [B]) with every family equally likely, examples drawn from ``generator``."""
    n_tasks = int(data.task.max()) + 1
    task = torch.randint(0, n_tasks, (batch_size,), generator=generator)  # [B]
    counts = torch.bincount(data.task.cpu(), minlength=n_tasks)  # [T]
    starts = torch.cumsum(counts, 0) - counts  # families are stored contiguously
    offset = (torch.rand(batch_size, generator=generator) * counts[task]).long()
    index = (starts[task] + offset).to(data.tokens.device)
    return data.tokens[index], data.answers[index]


def answer_loss(model, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator | None = None):
    """Cross-entropy of the answer byte at the last position, and its accuracy as a logged extra."""
    tokens, answers = batch
    logits = model(tokens, generator=generator)[:, -1]  # [B, vocab]
    return F.cross_entropy(logits, answers), {"acc": (logits.argmax(-1) == answers).float().mean().item()}


def candidate_mask(vocab: int, device=None) -> torch.Tensor:
    """[tasks, vocab] bool: the answer tokens (ASCII codes) each family can give, from ANSWERS."""
    allowed = torch.zeros(len(TASKS), vocab, dtype=torch.bool, device=device)
    for t, answers in enumerate(ANSWERS):
        allowed[t, list(answers.encode("ascii"))] = True
    return allowed


@torch.no_grad()
def accuracy_by_task(model, data: TaskSplit, batch_size: int = 1024) -> pd.Series:
    """Held-out accuracy of the last-position answer per family (index: task name), the argmax taken over the
    family's own candidate answers (ANSWERS), not the whole vocabulary, so a masked model that stops answering in
    the task's format is scored by its preference among the answers; under ``measures.heads.masked_heads`` with
    some heads masked."""
    model.eval()
    hits = []
    for i in range(0, len(data), batch_size):
        logits = model(data.tokens[i : i + batch_size])[:, -1]  # [B, vocab]
        allowed = candidate_mask(logits.shape[-1], logits.device)[data.task[i : i + batch_size]]  # [B, vocab]
        hits.append(logits.masked_fill(~allowed, float("-inf")).argmax(-1) == data.answers[i : i + batch_size])
    correct = torch.cat(hits).float().cpu()  # [N]
    task = data.task.cpu()  # [N]
    per = torch.zeros(len(TASKS)).index_add_(0, task, correct) / torch.bincount(task, minlength=len(TASKS)).clamp(min=1)
    return pd.Series(per.numpy(), index=list(TASKS))


MIN_SEQ_LEN = 12  # the longest prompt, in characters


def check_seq_len(value) -> None:
    """SEQ_LEN must be an int of at least 12 (prompts are up to 12 characters)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_SEQ_LEN:
        raise MoeError(
            f"SEQ_LEN={value!r} is not allowed; it must be an int of at least {MIN_SEQ_LEN} "
            f"(prompts are up to {MIN_SEQ_LEN} characters)"
        )
