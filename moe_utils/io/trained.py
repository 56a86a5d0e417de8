"""Trained models kept between runs: ``data/trained/<notebook>/<key>/`` holds the state dicts and the settings as JSON.

The key is a hash of the settings, the seed and the source of the modules that train the model (not the package
version, which does not change with the code), so any change to any of them trains again. A kept run is written
atomically (a staging folder renamed into place) and checked by ``cache_check`` when loaded: a damaged or partial
one is set aside with one line and never half-loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

from . import paths
from .atomic import temporary_prefix
from .cache_check import damage, record, set_aside

STATE_FILE = "state.pt"
SETTINGS_FILE = "settings.json"


def trained_dir() -> Path:
    """The folder of every kept model: ``data/trained/`` (``$MOE_TRAINED_DIR`` when set, e.g. for tests)."""
    override = os.environ.get("MOE_TRAINED_DIR")
    return Path(override).resolve() if override else paths.DATA_DIR / "trained"


def code_digest(modules: list[ModuleType]) -> str:
    """sha256 of the source files of ``modules`` (the code that trains the model), in the order given."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(inspect.getsourcefile(module)).read_bytes())
    return digest.hexdigest()


def run_key(settings, seed: int, modules: list[ModuleType]) -> str:
    """16 hex digits naming one trained run: its settings (a dataclass), its seed and its training code."""
    fields = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings)
    text = json.dumps({"settings": fields, "seed": seed, "code": code_digest(modules)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_folder(notebook: str, key: str) -> Path:
    """Where one kept run lives."""
    return trained_dir() / notebook / key


def save_trained(notebook: str, key: str, states: dict[str, dict], settings) -> Path:
    """Keep ``states`` (model name -> state dict) and the settings under ``<notebook>/<key>/``, atomically."""
    target = run_folder(notebook, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=temporary_prefix(key), suffix=".staging", dir=target.parent))
    try:
        cpu = {name: {k: v.detach().cpu() for k, v in state.items()} for name, state in states.items()}
        torch.save(cpu, stage / STATE_FILE)
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
    info = json.loads((folder / SETTINGS_FILE).read_text())
    return torch.load(folder / STATE_FILE, weights_only=True), info
