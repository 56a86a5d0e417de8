"""Trained models kept between runs: ``data/trained/<notebook>/<key>/`` holds the state dicts and the settings as JSON.

The key is a hash of the settings, the seed and the source of the modules that train the model (not the package
version, which does not change with the code), so any change to any of them trains again. A kept run is written
atomically (a staging folder renamed into place) and checked by ``cache_check`` when loaded: a damaged or partial
one is set aside with one line and never half-loaded. Nothing kept is a pickle: state dicts are read with
``weights_only=True`` and a job's result is a JSON tree beside its tensors (``safe_store``), so a swapped file cannot
run code; one that does not load is set aside like a damaged one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from . import paths
from .atomic import temporary_prefix
from .cache_check import damage, record, set_aside
from .safe_store import kept_files, load_object, save_object

STATE_FILE = "state.pt"
SETTINGS_FILE = "settings.json"
RESULT_STEM = "result"  # result.json + result.tensors.pt
NOT_IN_KEY = ("retrain", "workers", "executor")  # settings that never change what is trained


def trained_dir() -> Path:
    """The folder of every kept model: ``data/trained/`` (``$MOE_TRAINED_DIR`` when set, e.g. for tests)."""
    override = os.environ.get(paths.TRAINED_ENV)
    return Path(override).resolve() if override else paths.DATA_DIR / "trained"


def code_digest(modules: list[ModuleType]) -> str:
    """sha256 of the source files of ``modules`` (the code that trains the model), in the order given."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(inspect.getsourcefile(module)).read_bytes())
    return digest.hexdigest()


def training_modules(fn) -> list[ModuleType]:
    """The moe_utils modules ``fn`` runs on: its own module and every moe_utils module reached through their names."""
    seen: dict[str, ModuleType] = {}
    todo = [sys.modules[fn.__module__]]
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen[module.__name__] = module
        for value in vars(module).values():
            name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
            if isinstance(name, str) and name.startswith("moe_utils") and name in sys.modules and name not in seen:
                todo.append(sys.modules[name])
    return [seen[name] for name in sorted(seen) if getattr(seen[name], "__file__", None)]


def settings_fields(settings) -> dict:
    """The settings' fields that decide what is trained (RETRAIN, WORKERS and EXECUTOR do not)."""
    fields = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings)
    return {k: v for k, v in fields.items() if k not in NOT_IN_KEY}


def run_key(settings, seed: int, modules: list[ModuleType], job: dict | None = None) -> str:
    """16 hex digits naming one trained run: its settings (a dataclass), its seed, its training code and the job's
    other arguments (``job``, e.g. the run's name)."""
    text = json.dumps(
        {"settings": settings_fields(settings), "seed": seed, "code": code_digest(modules), "job": job or {}},
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_folder(notebook: str, key: str) -> Path:
    """Where one kept run lives."""
    return trained_dir() / notebook / key


def save_trained(notebook: str, key: str, states: dict[str, dict], settings, result=None) -> Path:
    """Keep ``states`` (model name -> state dict), the settings and the job's ``result`` (its tables, when given)
    under ``<notebook>/<key>/``, atomically."""
    target = run_folder(notebook, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=temporary_prefix(key), suffix=".staging", dir=target.parent))
    try:
        cpu = {name: {k: v.detach().cpu() for k, v in state.items()} for name, state in states.items()}
        torch.save(cpu, stage / STATE_FILE)
        if result is not None:
            save_object(result, stage, RESULT_STEM)
        fields = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings)
        info = {"settings": fields, "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
        (stage / SETTINGS_FILE).write_text(json.dumps(info, indent=1, default=str))
        record(stage)
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


def load_trained(notebook: str, key: str, log=print) -> tuple[dict[str, dict], dict] | None:
    """The kept run's (states, info) when it exists and matches its record; None (after one line) when damaged."""
    folder = run_folder(notebook, key)
    if not folder.exists():
        return None
    reason = damage(folder)
    if reason is not None:
        set_aside(folder, reason, log)
        return None
    try:
        info = json.loads((folder / SETTINGS_FILE).read_text())
        return torch.load(folder / STATE_FILE, weights_only=True), info
    except Exception as error:  # a file that matches its record yet does not load as weights (e.g. a swapped pickle)
        set_aside(folder, f"{STATE_FILE} does not load as weights: {one_line(error)}", log)
        return None


def load_result(notebook: str, key: str, log=print):
    """The kept job's (result, info) when it exists, has a result and matches its record; else None."""
    kept = load_trained(notebook, key, log)
    folder = run_folder(notebook, key)
    if kept is None or not all((folder / name).exists() for name in kept_files(RESULT_STEM)):
        return None
    try:
        return load_object(folder, RESULT_STEM), kept[1]
    except Exception as error:  # a file that matches its record yet is not a kept result (e.g. a swapped pickle)
        set_aside(folder, f"its result does not load without running code: {one_line(error)}", log)
        return None


def one_line(error: Exception) -> str:
    """The first line of an error, with its type."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def state_dicts(models: dict) -> dict[str, dict]:
    """{name: state dict} of trained modules {name: module}."""
    return {name: model.state_dict() for name, model in models.items()}


@dataclass
class KeptTables:
    """A job's result when it returns tables: the tables by name and the state dicts of the models it trained."""

    tables: dict
    states: dict  # model name -> state dict


def result_states(result) -> dict[str, dict]:
    """The state dicts a job's result carries: its ``states`` ({name: state dict}), its ``models``' ({name: module})
    or its ``model``'s."""
    states = getattr(result, "states", None)
    if states:
        return dict(states)
    models = getattr(result, "models", None)
    if isinstance(models, dict) and models:
        return state_dicts(models)
    model = getattr(result, "model", None)
    return {"model": model.state_dict()} if model is not None else {}


@dataclass
class KeptRuns:
    """A study's kept runs: each job's trained models and tables under ``data/trained/<notebook>/<key>/``; used by
    ``runtime.run_parallel(..., keep=)`` to load a job instead of running it (unless RETRAIN or ``$MOE_RETRAIN``)."""

    notebook: str
    settings: object
    log: object = print
    loaded: list = field(default_factory=list)  # the loaded runs' save dates
    trained: int = 0

    @property
    def retrain(self) -> bool:
        """Train again whatever is kept: RETRAIN = True, or the pipeline without --reuse."""
        return bool(getattr(self.settings, "retrain", False)) or os.environ.get(paths.RETRAIN_ENV) == "1"

    def key(self, fn, job: dict) -> str:
        """The key of one job of ``fn``: the settings, the seed, the other arguments, the function and its code."""
        args = {k: v for k, v in job.items() if k not in ("settings", "seed")}
        args["function"] = f"{fn.__module__}.{fn.__qualname__}"
        return run_key(self.settings, job.get("seed"), training_modules(fn), args)

    def load(self, fn, job: dict):
        """The kept result of one job, or None (none kept, RETRAIN, or damaged: set aside with one line)."""
        if self.retrain:
            return None
        found = load_result(self.notebook, self.key(fn, job), self.log)
        if found is None:
            return None
        self.loaded.append(found[1]["saved"])
        return found[0]

    def save(self, fn, job: dict, result) -> None:
        """Keep one job's models and result."""
        save_trained(self.notebook, self.key(fn, job), result_states(result), self.settings, result)
        self.trained += 1

    def summary(self) -> str:
        """One line: what was loaded and what was trained, and how to train again."""
        where = run_folder(self.notebook, "").parent
        shown = where.relative_to(paths.REPO_ROOT) if where.is_relative_to(paths.REPO_ROOT) else where
        parts = []
        if self.loaded:
            dates = sorted(self.loaded)
            when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
            parts.append(
                f"loaded {len(self.loaded)} kept run(s) trained {when} from {shown}/ (RETRAIN = True trains again)"
            )
        if self.trained:
            why = " (RETRAIN)" if self.retrain else ""
            parts.append(f"trained {self.trained} run(s){why} and kept them in {shown}/")
        return "; ".join(parts)
