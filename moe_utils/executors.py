"""Where a study's jobs run: local processes (the default), a Dask cluster, or Slurm through submitit.

One setting chooses: ``$MOE_EXECUTOR`` (or the ``executor`` argument of ``runtime.run_parallel``, which wins):

* ``processes`` — ``WORKERS`` spawned processes on this machine, one torch thread each;
* ``dask:local`` — a ``dask.distributed.LocalCluster`` of ``WORKERS`` one-thread worker processes;
* ``dask:<scheduler address>`` — an existing Dask cluster (``dask:tcp://10.0.0.5:8786``);
* ``slurm:<partition>`` — one Slurm job per seed through submitit (a job array), logs under ``runs/slurm/``; its
  limits come from ``$MOE_SLURM_TIME_MIN`` (default 120), ``$MOE_SLURM_MEM_GB`` (8), ``$MOE_SLURM_CPUS`` (1) and
  ``$MOE_SLURM_GPUS`` (0);
* ``slurm:local`` — submitit's local executor: the same path as Slurm, as processes on this machine (for tests).

A job's inputs are its settings and seed, and its result is the study's tables: nothing ties a job to this process,
so any worker that sees the same files (a shared filesystem for Slurm) can run it. The engines are optional extras
(``pip install -e '.[dask]'`` or ``'.[slurm]'``); naming one that is not installed is one line saying which.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import MoeError
from .io import paths

EXECUTOR_ENV = "MOE_EXECUTOR"
FORMS = "'processes', 'dask:local', 'dask:<scheduler address>', 'slurm:<partition>' or 'slurm:local'"
EXTRAS = {"dask": ("dask.distributed", "dask"), "slurm": ("submitit", "slurm")}


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed executor setting: its engine and target (``dask:local`` -> ("dask", "local"))."""

    engine: str  # "processes" | "dask" | "slurm"
    target: str = ""
    text: str = "processes"


def parse_executor(text: str | None) -> ExecutorSpec:
    """The executor named by ``text`` (None: ``$MOE_EXECUTOR``, else "processes"); one line for a bad one, before
    any work, and one line naming the extra to install when its engine is missing."""
    text = (text if text is not None else os.environ.get(EXECUTOR_ENV, "")).strip() or "processes"
    engine, _, target = text.partition(":")
    if engine == "processes" and not target:
        return ExecutorSpec("processes", "", text)
    if engine not in EXTRAS or not target.strip():
        raise MoeError(f"EXECUTOR={text!r} is not allowed; use {FORMS}")
    module, extra = EXTRAS[engine]
    try:
        __import__(module)
    except ImportError:
        raise MoeError(f"EXECUTOR={text!r} needs the [{extra}] extra: pip install -e '.[{extra}]'") from None
    return ExecutorSpec(engine, target.strip(), text)


def one_thread_call(fn, kwargs: dict):
    """Run ``fn(**kwargs)`` on one torch thread (how every worker trains), wherever it runs."""
    import torch

    torch.set_num_threads(1)
    return fn(**kwargs)


@contextlib.contextmanager
def dask_executor(target: str, workers: int) -> Iterator:
    """A concurrent.futures executor on a Dask cluster: a LocalCluster of ``workers`` one-thread processes for
    "local", else the scheduler at ``target``."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if target == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster if cluster is not None else target, set_as_default=False)
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def slurm_executor(target: str, workers: int) -> Iterator:
    """A submitit executor: Slurm jobs on partition ``target`` (or submitit's local executor for "local"), with
    their logs under ``runs/slurm/<time>/``."""
    import submitit

    folder = paths.RUNS_DIR / "slurm" / time.strftime("%Y-%m-%dT%H-%M-%S")
    if target == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=int(os.environ.get("MOE_SLURM_TIME_MIN", 120)))
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(
            slurm_partition=target,
            timeout_min=int(os.environ.get("MOE_SLURM_TIME_MIN", 120)),
            mem_gb=int(os.environ.get("MOE_SLURM_MEM_GB", 8)),
            cpus_per_task=int(os.environ.get("MOE_SLURM_CPUS", 1)),
            gpus_per_node=int(os.environ.get("MOE_SLURM_GPUS", 0)),
            slurm_array_parallelism=workers,
        )
    yield SubmititFutures(executor)


class SubmititFutures:
    """submitit's executor behind ``submit(fn, *args)`` returning future-like jobs (``result()``, ``cancel()``)."""

    def __init__(self, executor):
        self.executor = executor

    def submit(self, fn, *args):
        """One job running ``fn(*args)``."""
        return self.executor.submit(fn, *args)


def job_failure(job: dict, error: BaseException) -> str:
    """One line for a failed job: its seed, its settings' key and the error's (or remote traceback's) last line."""
    settings, seed = job.get("settings"), job.get("seed")
    key = ""
    if settings is not None:
        from .io.trained import run_key

        key = f", settings key {run_key(settings, seed, [])}"
    return f"seed {seed}{key}: {type(error).__name__}: {remote_last_line(str(error))}"[:300]


def remote_last_line(message: str) -> str:
    """The line of a (possibly remote) error message that names the exception, e.g. the last line of the traceback
    submitit or Dask pass on; the message's last line when there is none."""
    import re

    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)(:|$)", line)]
    return named[-1] if named else (lines[-1] if lines else "")
