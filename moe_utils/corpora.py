"""Three text domains as byte-level tokens: Wikipedia (en), GitHub-style code and DM Mathematics.

- ``wikipedia``: WikiText-2 (validation + test files of the *tokenized* release: words split by
  spaces, rare words as ``<unk>``, numbers as ``1 @,@ 000``), from ``$MOE_DATA_MIRROR/wikitext-2``
  or downloaded once into ``data/raw/wikitext-2``. One document per article.
- ``github``: the Python standard library's own ``.py`` sources of the running interpreter.
  One document per file.
- ``dm_mathematics``: question/answer pairs generated locally by DeepMind's ``mathematics_dataset``
  package, formatted ``"Q: ...\\nA: ...\\n"``. One document per example.

Tokens are UTF-8 bytes (vocabulary 256). All randomness comes from explicit seeds or generators.
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import paths
from .atomic import atomic_path
from .errors import MoeError, check_choice, check_positive, check_range

if TYPE_CHECKING:  # torch and pandas are imported where used, so the DM generation child starts quickly
    import pandas as pd
    import torch

DOMAINS = ("wikipedia", "github", "dm_mathematics")
VOCAB_SIZE = 256

WIKITEXT_FILES = ("valid.txt", "test.txt")
WIKITEXT_URL = "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/{name}"
WIKITEXT_SHA256 = {
    "valid.txt": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
    "test.txt": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
}

# Folder names skipped when walking the standard library. ``pydoc_data`` is one 750 kB string of
# documentation text, not code.
STDLIB_EXCLUDED_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "pydoc_data"}
)

DM_CACHE_VERSION = 1
DM_DEFAULT_MAX_CHARS = 1_000_000
DM_MAX_QUESTION_LENGTH = 160  # the package's generate_settings limits, applied as generate.py does
DM_MAX_ANSWER_LENGTH = 30
DM_HASH_SEED = "0"  # generation runs under this PYTHONHASHSEED: some modules iterate over sets of strings


@dataclass
class DomainText:
    """The documents of one domain plus a record of where they came from."""

    name: str
    documents: list[str]
    info: dict = field(default_factory=dict)

    @property
    def n_chars(self) -> int:
        """Total number of characters over all documents."""
        return sum(len(d) for d in self.documents)


@dataclass
class DomainCorpus:
    """Per-domain train and held-out byte streams (uint8 tensors) and a record of their sources."""

    train: dict[str, torch.Tensor]
    held_out: dict[str, torch.Tensor]
    record: pd.DataFrame
    info: dict[str, dict] = field(default_factory=dict)


# ----------------------------------------------------------------------------- bytes and batches


def _uint8_tensor(data: bytes) -> torch.Tensor:
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def encode_bytes(text: str) -> torch.Tensor:
    """UTF-8 bytes of ``text`` as a 1-D int64 tensor with values in 0..255."""
    return _uint8_tensor(text.encode("utf-8")).long()


def decode_bytes(tokens: torch.Tensor) -> str:
    """Inverse of :func:`encode_bytes` (invalid UTF-8 is replaced, e.g. at a cut multi-byte char)."""
    import torch

    return bytes(tokens.to(torch.uint8).tolist()).decode("utf-8", errors="replace")


def sample_lm_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a 1-D token stream: int64 ``(inputs, targets)`` of shape [B, S], targets shifted by one."""
    import torch

    check_positive("batch_size", batch_size)
    check_positive("seq_len", seq_len)
    if tokens.dim() != 1 or len(tokens) < seq_len + 1:
        shape = tuple(tokens.shape)
        raise MoeError(f"need a 1-D token stream of at least seq_len+1={seq_len + 1} tokens; got shape {shape}")
    starts = torch.randint(0, len(tokens) - seq_len, (batch_size,), generator=generator)
    index = starts.to(tokens.device)[:, None] + torch.arange(seq_len + 1, device=tokens.device)
    window = tokens[index].long()
    return window[:, :-1], window[:, 1:]


# ----------------------------------------------------------------------------- document handling


def _permutation(n: int, seed: int, purpose: int) -> np.ndarray:
    return np.random.default_rng([seed, purpose]).permutation(n)


def _limit_chars(documents: list[str], max_chars: int | None, seed: int) -> list[str]:
    """Documents in a seeded random order; with ``max_chars``, whole ones until the total is reached, the last cut."""
    ordered = [documents[i] for i in _permutation(len(documents), seed, 0)]
    if max_chars is None:
        return ordered
    check_positive("max_chars", max_chars)
    kept, total = [], 0
    for doc in ordered:
        if total >= max_chars:
            break
        kept.append(doc[: max_chars - total])
        total += len(kept[-1])
    return kept


def split_documents(documents: list[str], held_out_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic document-level ``(train, held_out)`` split; both lists come in a seeded random order."""
    check_range("held_out_fraction", held_out_fraction, 0.0, 1.0)
    order = _permutation(len(documents), seed, 1)
    n_held = int(round(held_out_fraction * len(documents)))
    held = [documents[i] for i in order[:n_held]]
    train = [documents[i] for i in order[n_held:]]
    return train, held


# ----------------------------------------------------------------------------- wikipedia


def _wikitext_articles(text: str) -> list[str]:
    """Split WikiText lines into articles at `` = Title = `` lines, dropping heading and empty lines."""
    articles, current = [], []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("=") and stripped.endswith("="):
            if stripped.startswith("= ") and not stripped.startswith("= ="):  # top-level title
                if current:
                    articles.append("".join(current))
                current = []
            continue
        current.append(line if line.endswith("\n") else line + "\n")
    if current:
        articles.append("".join(current))
    return articles


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wikitext_help(reason: str) -> str:
    return (
        f"no WikiText-2 data ({reason}); either set {paths.MIRROR_ENV} to a folder holding "
        f"wikitext-2/{' and wikitext-2/'.join(WIKITEXT_FILES)}, or connect to the internet so they can be "
        f"downloaded into {paths.RAW_DIR / 'wikitext-2'}"
    )


def _download_wikitext(folder: Path) -> None:
    for name in WIKITEXT_FILES:
        target = folder / name
        if target.is_file() and _sha256(target) == WIKITEXT_SHA256[name]:
            continue
        url = WIKITEXT_URL.format(name=name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except Exception as exc:  # URLError, timeouts, HTTP errors
            raise MoeError(_wikitext_help(f"download of {url} failed: {' '.join(str(exc).split())}")) from None
        if hashlib.sha256(payload).hexdigest() != WIKITEXT_SHA256[name]:
            raise MoeError(_wikitext_help(f"download of {url} has an unexpected sha256"))
        with atomic_path(target) as tmp:
            tmp.write_bytes(payload)


def _wikitext_folder() -> tuple[Path, str]:
    mirror = paths.mirror_dir()
    if mirror is not None:
        folder = mirror / "wikitext-2"
        missing = [n for n in WIKITEXT_FILES if not (folder / n).is_file()]
        if missing:
            lacking = ", ".join(f"wikitext-2/{n}" for n in missing)
            raise MoeError(_wikitext_help(f"{paths.MIRROR_ENV}={mirror} lacks {lacking}"))
        return folder, "mirror"
    folder = paths.RAW_DIR / "wikitext-2"
    _download_wikitext(folder)
    return folder, "download"


def _load_wikipedia() -> DomainText:
    folder, source = _wikitext_folder()
    documents, files = [], {}
    for name in WIKITEXT_FILES:
        path = folder / name
        articles = _wikitext_articles(path.read_text(encoding="utf-8"))
        documents.extend(articles)
        digest = _sha256(path)
        files[name] = {
            "path": str(path),
            "sha256": digest,
            "matches_reference_sha256": digest == WIKITEXT_SHA256[name],
            "articles": len(articles),
        }
    info = {"source": source, "dataset": "WikiText-2 (tokenized release), valid+test", "files": files}
    return DomainText("wikipedia", documents, info)


# ----------------------------------------------------------------------------- github (stdlib code)


def stdlib_python_files(root: str | os.PathLike | None = None) -> list[Path]:
    """Sorted ``.py`` files of the standard library, skipping test folders and site-packages."""
    root = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_EXCLUDED_DIRS)
        found.extend(Path(folder) / f for f in files if f.endswith(".py"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _load_github(root: str | os.PathLike | None = None) -> DomainText:
    root = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    documents, used, skipped = [], [], []
    for path in stdlib_python_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            skipped.append(relative)
            continue
        if not text.strip():
            continue
        documents.append(text if text.endswith("\n") else text + "\n")
        used.append(relative)
    info = {
        "source": "python stdlib",
        "stdlib": str(root),
        "python": sys.version.split()[0],
        "excluded_dirs": sorted(STDLIB_EXCLUDED_DIRS),
        "files": used,
        "skipped_undecodable": skipped,
    }
    return DomainText("github", documents, info)


# ----------------------------------------------------------------------------- DM mathematics


def _patch_sympy_for_mathematics_dataset() -> None:
    """Re-export ``base_solution_linear`` where mathematics_dataset 1.0.1 imports it from (SymPy >= 1.6 moved it)."""
    package = importlib.import_module("sympy.solvers.diophantine")  # the package, not the same-named function
    if not hasattr(package, "base_solution_linear"):
        from sympy.solvers.diophantine.diophantine import base_solution_linear

        package.base_solution_linear = base_solution_linear


_entity_numbers = itertools.count()


def _reset_entity_numbers() -> None:
    global _entity_numbers
    _entity_numbers = itertools.count()


def _entity_hash(entity) -> int:
    """Hash an Entity by the order in which it was first hashed (its default hash is its memory address)."""
    if "_moe_hash" not in entity.__dict__:
        entity._moe_hash = next(_entity_numbers)
    return entity._moe_hash


def _patch_mathematics_dataset_entities() -> None:
    """Make ``composition.Entity`` hash deterministically: composed questions iterate over a set of them."""
    from mathematics_dataset.util import composition

    composition.Entity.__hash__ = _entity_hash  # equality stays identity, so sets behave as before


def _dm_module_table() -> dict:
    """All training modules of mathematics_dataset (full training entropy range), by flattened name."""
    _patch_sympy_for_mathematics_dataset()
    try:
        from mathematics_dataset.modules import modules as dm_modules
    except ImportError as exc:
        raise MoeError(f"DM Mathematics needs mathematics_dataset ({exc}); run: pip install mathematics_dataset") from None
    _patch_mathematics_dataset_entities()

    flat = {}

    def add(tree: dict, prefix: str | None) -> None:
        for key, value in tree.items():
            name = key if prefix is None else f"{prefix}__{key}"
            if isinstance(value, dict):
                add(value, name)
            else:
                flat[name] = value

    add(dm_modules.train(lambda entropy_range: entropy_range), None)
    return dict(sorted(flat.items()))


def dm_module_names() -> list[str]:
    """Names of all mathematics_dataset training modules, e.g. ``"arithmetic__add_or_sub"``."""
    return list(_dm_module_table())


def _dm_versions() -> dict:
    versions = {}
    for package in ("mathematics_dataset", "sympy", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = ".".join(map(str, sys.version_info[:2]))
    return versions


def _module_seed(seed: int, module: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{module}".encode()).digest()[:4], "little")


def _global_rngs() -> tuple:
    """The global generators mathematics_dataset draws from: ``random``, ``np.random`` and SymPy's ``rng``."""
    from sympy.core.random import rng as sympy_rng  # randprime() etc. draw from it

    return random, np.random, sympy_rng


def _get_rng_state() -> tuple:
    py, npr, sym = _global_rngs()
    return py.getstate(), npr.get_state(), sym.getstate()


def _set_rng_state(state: tuple) -> None:
    py, npr, sym = _global_rngs()
    py.setstate(state[0])
    npr.set_state(state[1])
    sym.setstate(state[2])


def _dm_generate(seed: int, modules: list[str], examples_per_module: int | None, max_chars: int | None) -> dict:
    """Round-robin generation with one RNG stream per module; modules that raise are dropped whole."""
    table = _dm_module_table()
    unknown = [m for m in modules if m not in table]
    if unknown:
        raise MoeError(f"unknown mathematics_dataset module(s) {', '.join(unknown)}; see dm_module_names()")
    saved = _get_rng_state()
    states = {}
    for name in modules:  # each module's streams start from its own seed
        for rng in _global_rngs():
            rng.seed(_module_seed(seed, name))
        states[name] = _get_rng_state()
    examples = {name: [] for name in modules}
    failed, dropped, chars, rounds = {}, 0, 0, 0
    seconds = dict.fromkeys(modules, 0.0)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while examples and (
                (examples_per_module is not None and rounds < examples_per_module)
                or (max_chars is not None and chars < max_chars)
            ):
                for name in list(examples):
                    _reset_entity_numbers()  # entity hashes restart at 0 for every draw
                    _set_rng_state(states[name])
                    draw_started = time.perf_counter()
                    try:
                        while True:
                            problem = table[name]()
                            question, answer = str(problem.question), str(problem.answer)
                            if len(question) <= DM_MAX_QUESTION_LENGTH and len(answer) <= DM_MAX_ANSWER_LENGTH:
                                break
                            dropped += 1
                        seconds[name] += time.perf_counter() - draw_started
                    except Exception as exc:  # NumPy 2 removed ndarray.itemset / np.object used by some modules
                        message = " ".join(f"{type(exc).__name__}: {str(exc).split('. ')[0]}".split())[:200]
                        failed[name] = {"error": message, "at_example": len(examples[name])}
                        chars -= sum(len(e) for e in examples.pop(name))
                        continue
                    states[name] = _get_rng_state()
                    examples[name].append(f"Q: {question}\nA: {answer}\n")
                    chars += len(examples[name][-1])
                rounds += 1
    finally:
        _set_rng_state(saved)
    return {
        "examples": examples,
        "modules_used": list(examples),
        "modules_failed": failed,
        "examples_per_module": rounds if examples else 0,
        "dropped_too_long": dropped,
        "generation_seconds": round(time.perf_counter() - started, 3),
        "module_seconds": {name: round(value, 3) for name, value in seconds.items()},
    }


def _dm_worker(request_json: str, out_path: str) -> int:
    """Child-process entry point: generate as requested and write the result as JSON to ``out_path``."""
    try:
        result = _dm_generate(**json.loads(request_json))
    except MoeError as exc:
        print(exc, file=sys.stderr)
        return 2
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _dm_generate_in_child(request: dict) -> dict:
    """Run :func:`_dm_generate` in a fresh interpreter with a fixed PYTHONHASHSEED; return its result."""
    code = "import sys; from moe_utils.corpora import _dm_worker; sys.exit(_dm_worker(sys.argv[1], sys.argv[2]))"
    env = {**os.environ, "PYTHONHASHSEED": DM_HASH_SEED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dm.json"
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(request), str(out)], env=env, capture_output=True, text=True
        )
        if done.returncode != 0 or not out.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {done.returncode}"
            raise MoeError(f"DM Mathematics generation failed: {reason}")
        return json.loads(out.read_text(encoding="utf-8"))


def generate_dm_mathematics(
    seed: int,
    *,
    examples_per_module: int | None = None,
    max_chars: int | None = None,
    modules: list[str] | None = None,
    use_cache: bool = True,
) -> DomainText:
    """Generate (or load from cache) DM Mathematics Q/A documents, interleaved round-robin over modules.

    Generation runs rounds of one example per module until ``examples_per_module`` rounds are done and/or
    ``max_chars`` characters exist. The package draws from Python's global ``random``, NumPy's global
    ``np.random`` and SymPy's ``sympy.core.random.rng``: each module gets its own streams seeded from
    ``(seed, module name)``, swapped into those globals around each draw. Generation runs in a child
    interpreter with ``PYTHONHASHSEED=0`` (several modules' output depends on string-hash order), so the
    caller's RNG states are untouched. A module that raises (with NumPy 2: ``polynomials__*``,
    ``calculus__*``, some ``*_composed``) is dropped with all its examples and listed in
    ``info["modules_failed"]``. ``modules=None`` means all training modules. The result is cached
    under ``data/processed`` keyed by seed, modules, counts and package versions.
    """
    if examples_per_module is None and max_chars is None:
        max_chars = DM_DEFAULT_MAX_CHARS
    if examples_per_module is not None:
        check_positive("examples_per_module", examples_per_module)
    if max_chars is not None:
        check_positive("max_chars", max_chars)
    names = sorted(set(modules)) if modules is not None else dm_module_names()
    identity = {
        "v": DM_CACHE_VERSION,
        "seed": seed,
        "modules": names,
        "examples_per_module": examples_per_module,
        "max_chars": max_chars,
        "versions": _dm_versions(),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    cache = paths.PROCESSED_DIR / f"dm_mathematics_seed{seed}_{key}.json"
    if use_cache and cache.is_file():
        payload = json.loads(cache.read_text(encoding="utf-8"))
        cached = True
    else:
        request = {"seed": seed, "modules": names, "examples_per_module": examples_per_module, "max_chars": max_chars}
        payload = {**identity, "python_hash_seed": DM_HASH_SEED, **_dm_generate_in_child(request)}
        if use_cache:
            with atomic_path(cache) as tmp:
                tmp.write_text(json.dumps(payload), encoding="utf-8")
        cached = False
    used = payload["modules_used"]
    documents = [payload["examples"][m][i] for i in range(payload["examples_per_module"]) for m in used]
    info = {k: v for k, v in payload.items() if k != "examples"}
    info.update(source="mathematics_dataset", cache_path=str(cache) if use_cache else None, from_cache=cached)
    return DomainText("dm_mathematics", documents, info)


# ----------------------------------------------------------------------------- domains and corpus


def load_domain_texts(domain: str, *, seed: int, max_chars: int | None = None) -> DomainText:
    """Documents of one domain in a seeded random order, at most ``max_chars`` characters (last document cut).

    ``dm_mathematics`` is generated from ``seed`` (enough for ``max_chars``, default
    ``DM_DEFAULT_MAX_CHARS``); the other domains are fixed texts that ``seed`` only reorders.
    """
    check_choice("domain", domain, DOMAINS)
    if domain == "wikipedia":
        text = _load_wikipedia()
    elif domain == "github":
        text = _load_github()
    else:
        text = generate_dm_mathematics(seed, max_chars=max_chars)
    available = text.n_chars
    documents = _limit_chars(text.documents, max_chars, seed)
    info = {**text.info, "available_documents": len(text.documents), "available_chars": available, "seed": seed}
    return DomainText(domain, documents, info)


def _fill(encoded: list[bytes], order, budget: int) -> tuple[bytes, int]:
    """Concatenate documents drawn from the iterator ``order`` until ``budget`` bytes; cut the last one."""
    parts, total = [], 0
    while total < budget:
        index = next(order, None)
        if index is None:
            break
        parts.append(encoded[index])
        total += len(parts[-1])
    return b"".join(parts)[:budget], len(parts)


def build_domain_corpus(
    domains: tuple[str, ...] | list[str] = DOMAINS,
    tokens_per_domain: int = 1_000_000,
    held_out_tokens_per_domain: int = 100_000,
    seed: int = 0,
) -> DomainCorpus:
    """Per-domain train and held-out byte streams with the same train token budget for every domain.

    Documents are shuffled (seeded); held-out documents are taken first, then train documents, so the
    two share no document. Raises a one-line MoeError if a domain has too little text.
    """
    import pandas as pd

    check_positive("tokens_per_domain", tokens_per_domain)
    held = held_out_tokens_per_domain
    if isinstance(held, bool) or not isinstance(held, int) or held < 0:
        raise MoeError(f"held_out_tokens_per_domain={held!r} is not allowed; it must be an integer >= 0")
    if len(set(domains)) != len(domains) or not domains:
        raise MoeError(f"domains={list(domains)!r} must be a non-empty list without repeats")
    for domain in domains:
        check_choice("domain", domain, DOMAINS)
    need = tokens_per_domain + held_out_tokens_per_domain
    train, held_out, rows, infos = {}, {}, [], {}
    for domain in domains:
        # UTF-8 has at least one byte per character, so `need` characters give at least `need` bytes;
        # DM documents are short, so 2% plus a little covers the cut at the held-out boundary.
        max_chars = math.ceil(need * 1.02) + 4096 if domain == "dm_mathematics" else None
        text = load_domain_texts(domain, seed=seed, max_chars=max_chars)
        encoded = [d.encode("utf-8") for d in text.documents]
        order = iter(_permutation(len(encoded), seed, 2).tolist())
        held_bytes, n_held = _fill(encoded, order, held_out_tokens_per_domain)
        train_bytes, n_train = _fill(encoded, order, tokens_per_domain)
        if len(train_bytes) < tokens_per_domain:
            available = sum(len(e) for e in encoded)
            raise MoeError(
                f"domain {domain!r} has {available:,} bytes in {len(encoded):,} documents, too few for "
                f"{held_out_tokens_per_domain:,} held-out + {tokens_per_domain:,} train tokens; lower the budgets"
            )
        train[domain] = _uint8_tensor(train_bytes)
        held_out[domain] = _uint8_tensor(held_bytes)
        infos[domain] = text.info
        rows.append(
            {
                "domain": domain,
                "source": text.info.get("source"),
                "train_tokens": len(train_bytes),
                "held_out_tokens": len(held_bytes),
                "train_documents": n_train,
                "held_out_documents": n_held,
                "available_documents": len(encoded),
                "available_bytes": sum(len(e) for e in encoded),
                "dm_examples_per_module": text.info.get("examples_per_module"),
                "dm_modules_used": ",".join(text.info.get("modules_used", [])) or None,
                "dm_modules_failed": ",".join(text.info.get("modules_failed", {})) or None,
            }
        )
    return DomainCorpus(train, held_out, pd.DataFrame(rows), infos)
