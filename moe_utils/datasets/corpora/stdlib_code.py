"""GitHub-style code: the running interpreter's own standard-library ``.py`` sources, one document per file.

(Named ``stdlib_code`` rather than ``code`` so that it never shadows the standard library's ``code`` module.)
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from .text import DomainText

# Folder names skipped when walking the standard library. ``pydoc_data`` is one 750 kB string of
# documentation text, not code.
STDLIB_EXCLUDED_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "pydoc_data"}
)


def stdlib_python_files(root: str | os.PathLike | None = None) -> list[Path]:
    """Sorted ``.py`` files of the standard library, skipping test folders and site-packages."""
    root = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_EXCLUDED_DIRS)
        found.extend(Path(folder) / f for f in files if f.endswith(".py"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_github(root: str | os.PathLike | None = None) -> DomainText:
    """The standard library's decodable, non-empty ``.py`` files under ``root`` (default: this interpreter's)."""
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
