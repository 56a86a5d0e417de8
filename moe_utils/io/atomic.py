"""Atomic file writes: write to a temporary sibling, then rename into place; stale temporaries of dead runs removed."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Temporaries are named ".<stem>.pid<PID>.<random>.tmp<suffix>" (files) or ".<stem>.pid<PID>.<random>.staging" (folders),
# so that a later run can tell those of a process that no longer exists (killed mid-write) from live ones.
TEMPORARY = re.compile(r"^\..*\.pid(\d+)\.[^.]+\.(tmp.*|staging)$")


def new_file_mode() -> int:
    """The mode a newly created file gets here: 0666 less the umask (0644 under the usual umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def replace_keeping_mode(source: Path, target: Path) -> None:
    """Rename ``source`` onto ``target`` with the mode of the file it replaces (a new file's mode if there is none)."""
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else new_file_mode()
    os.chmod(source, mode)
    os.replace(source, target)


def temporary_prefix(stem: str) -> str:
    """The name prefix of this process's temporaries for ``stem``."""
    return f".{stem}.pid{os.getpid()}."


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=temporary_prefix(target.stem), suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        replace_keeping_mode(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporaries in ``folder`` left by processes that no longer run (e.g. killed mid-write); return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = TEMPORARY.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
