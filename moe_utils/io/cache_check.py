"""One checker for every cache the project writes (data tensors, converted models, kept trained models).

At write time ``record`` notes each file's size and sha256 (a sidecar ``<file>.check.json`` for a file, ``.check.json``
inside a folder); when a cache is chosen, ``damage`` says what is wrong with it (None when it matches its record), and
``set_aside`` moves a damaged one out of the way with one line, so the caller rebuilds it instead of failing on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from .checksums import sha256_of

FOLDER_RECORD = ".check.json"


def record_path(cache: Path) -> Path:
    """Where the record of ``cache`` lives: inside a folder, beside a file."""
    return cache / FOLDER_RECORD if cache.is_dir() else cache.with_name(cache.name + ".check.json")


def _files(cache: Path) -> dict[str, Path]:
    if cache.is_dir():
        return {
            p.relative_to(cache).as_posix(): p
            for p in sorted(cache.rglob("*"))
            if p.is_file() and p.name != FOLDER_RECORD
        }
    return {cache.name: cache}


def record(cache: Path) -> None:
    """Note the size and sha256 of ``cache`` (a file, or every file in a folder), written atomically."""
    cache = Path(cache)
    entries = {name: {"size": p.stat().st_size, "sha256": sha256_of(p)} for name, p in _files(cache).items()}
    target = record_path(cache)
    tmp = target.with_name(f".{target.name}.pid{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"files": entries}, indent=1))
    os.replace(tmp, target)


def damage(cache: Path) -> str | None:
    """What is wrong with ``cache`` against its record (missing, no record, a file's size or checksum), or None."""
    cache = Path(cache)
    if not cache.exists():
        return "it is missing"
    target = record_path(cache)
    if not target.is_file():
        return "it has no size/checksum record (an interrupted write?)"
    try:
        entries = json.loads(target.read_text())["files"]
    except (ValueError, KeyError, OSError):
        return f"its record {target.name} is unreadable"
    found = _files(cache)
    for name, entry in entries.items():
        path = found.get(name)
        if path is None:
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry["size"]:
            return f"{name} has {size:,} bytes, not the {entry['size']:,} recorded (truncated?)"
        if sha256_of(path) != entry["sha256"]:
            return f"{name} does not match its recorded sha256"
    return None


def set_aside(cache: Path, reason: str, log: Callable[[str], None] = print) -> Path:
    """Move a damaged cache (and its record) to ``<name>.damaged`` and say so in one line; return the new path."""
    cache = Path(cache)
    aside = cache.with_name(cache.name + ".damaged")
    if aside.is_dir():
        import shutil

        shutil.rmtree(aside)
    elif aside.exists():
        aside.unlink()
    sidecar = record_path(cache) if not cache.is_dir() else None
    os.replace(cache, aside)
    if sidecar is not None and sidecar.exists():
        sidecar.unlink()
    log(f"cache {cache} is damaged ({reason}); moved aside to {aside.name} and rebuilding it")
    return aside
