"""Ctrl-C, SIGTERM and kill -9 of a pipeline running a 2-worker study: one line, and no process of the run survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pipeline import tiny_notebooks

DRIVER = """
import runpy, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even when the tests run in the background
from moe_utils.io import paths
paths.NOTEBOOKS_DIR = Path(sys.argv[1])
sys.argv = ["moe_utils.pipeline", "--profile", "quick", "--output-dir", sys.argv[2]]
runpy.run_module("moe_utils.pipeline", run_name="__main__")
"""

JOB = """
import os, time
from pathlib import Path

def work(folder, i):
    Path(folder, f"{os.getpid()}.pid").write_text(str(os.getppid()))  # the worker and its parent, the kernel
    time.sleep(300)
    return i
"""

BODY = """
from slow_job import work
from moe_utils.runtime import run_parallel
run_parallel(work, [dict(folder={pids!r}, i=i) for i in range(2)], workers=2)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the run's processes")
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_pipeline_leaves_no_kernel_or_worker_alive(tmp_path, how):
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "slow_job.py").write_text(JOB)
    (tmp_path / "driver.py").write_text(DRIVER)
    tiny_notebooks(tmp_path / "notebooks", {"01_two_workers": BODY.format(pids=str(pids))})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "notebooks"), str(out)]
    pipeline = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(list(pids.glob("*.pid"))) == 2, 180), "the two workers never started"
        workers = [int(p.stem) for p in pids.glob("*.pid")]
        kernel = {int(p.read_text()) for p in pids.glob("*.pid")}
        assert len(kernel) == 1 and all(alive(pid) for pid in [*workers, *kernel])
        pipeline.send_signal(getattr(signal, how))
        _, err = pipeline.communicate(timeout=60)
        survivors = lambda: [pid for pid in [*workers, *kernel] if alive(pid)]  # noqa: E731
        assert wait_for(lambda: not survivors(), 30), f"still running after {how}: {survivors()}"
    finally:
        pipeline.kill()
        for pid_file in pids.glob("*.pid"):
            for pid in (int(pid_file.stem), int(pid_file.read_text())):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
    if how != "SIGKILL":
        lines = err.strip().splitlines()
        word = "terminated (SIGTERM)" if how == "SIGTERM" else "interrupted"
        assert len(lines) == 1 and lines[0].startswith(f"error: {word}; "), err
        assert pipeline.returncode == (143 if how == "SIGTERM" else 130)
        assert not (out / "01_two_workers.ipynb").exists() and not list(out.glob(".*staging"))
