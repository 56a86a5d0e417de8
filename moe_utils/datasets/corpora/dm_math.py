"""DM Mathematics: question/answer pairs generated locally by DeepMind's ``mathematics_dataset``, deterministically."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from ...errors import MoeError, check_positive
from ...io import paths
from ...io.atomic import atomic_path
from ...io.cache_check import damage, record, set_aside
from .text import DomainText

DM_CACHE_VERSION = 1
DM_DEFAULT_MAX_CHARS = 1_000_000
DM_MAX_QUESTION_LENGTH = 160  # the package's generate_settings limits, applied as generate.py does
DM_MAX_ANSWER_LENGTH = 30
DM_HASH_SEED = "0"  # generation runs under this PYTHONHASHSEED: some modules iterate over sets of strings


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
        raise MoeError(
            f"DM Mathematics needs mathematics_dataset ({exc}); run: pip install mathematics_dataset"
        ) from None
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
    code = "import sys; from moe_utils.datasets.corpora.dm_math import _dm_worker; sys.exit(_dm_worker(sys.argv[1], sys.argv[2]))"
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
    reason = damage(cache) if use_cache and cache.is_file() else "missing"
    if use_cache and cache.is_file() and reason is not None:
        set_aside(cache, reason)
    if use_cache and reason is None:
        payload = json.loads(cache.read_text(encoding="utf-8"))
        cached = True
    else:
        request = {"seed": seed, "modules": names, "examples_per_module": examples_per_module, "max_chars": max_chars}
        payload = {**identity, "python_hash_seed": DM_HASH_SEED, **_dm_generate_in_child(request)}
        if use_cache:
            with atomic_path(cache) as tmp:
                tmp.write_text(json.dumps(payload), encoding="utf-8")
            record(cache)
        cached = False
    used = payload["modules_used"]
    documents = [payload["examples"][m][i] for i in range(payload["examples_per_module"]) for m in used]
    info = {k: v for k, v in payload.items() if k != "examples"}
    info.update(source="mathematics_dataset", cache_path=str(cache) if use_cache else None, from_cache=cached)
    return DomainText("dm_mathematics", documents, info)
