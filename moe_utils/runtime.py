"""Device and profile resolution, and explicit random generators."""

from __future__ import annotations

import contextlib

import torch

from .errors import MoeError, check_choice

PROFILES = ("full", "quick")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"`` to cuda when available, else cpu; validate explicit names."""
    check_choice("DEVICE", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise MoeError(
            "DEVICE='cuda' is not allowed; this machine has no CUDA device (torch.cuda.is_available() is False); "
            "use 'auto' or 'cpu'"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch Generator seeded with ``seed`` on ``device``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


PROGRESS_ENV = "MOE_PROGRESS"  # "log": one closing line per loop instead of a live bar (set by the pipeline)


class ClosingLine:
    """A tqdm stand-in for saved notebooks: iterates silently, then prints one line with the count, time and postfix."""

    def __init__(self, iterable, desc: str = "", total: int | None = None, leave: bool = True):
        import time

        self.iterable, self.desc, self.leave, self.postfix = iterable, desc, leave, {}
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.clock, self.started = time.perf_counter, time.perf_counter()

    def __iter__(self):
        n = 0
        for n, item in enumerate(self.iterable, 1):  # noqa: B007 (n is the count after the loop)
            yield item
        if self.leave:
            extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
            print(
                f"{self.desc}: {n}/{self.total if self.total is not None else n} done in "
                f"{self.clock() - self.started:.1f} s" + (f" ({extra})" if extra else ""),
                flush=True,
            )

    def set_postfix(self, values: dict | None = None, **kwargs) -> None:
        """Remember the latest postfix values; they appear in the closing line."""
        self.postfix = {**(values or {}), **kwargs}


def progress(iterable, desc: str = "", total: int | None = None, disable: bool = False, leave: bool = True):
    """A progress bar: tqdm's notebook-aware bar, or a closing line when ``$MOE_PROGRESS`` is "log" (saved runs)."""
    import os

    from tqdm.auto import tqdm

    if not disable and os.environ.get(PROGRESS_ENV) == "log":
        return ClosingLine(iterable, desc, total, leave)
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=leave)


def _exit_with(parent: int, every: float = 0.5) -> None:
    """Poll until this process's parent is no longer ``parent`` (it died: we were re-parented), then exit at once."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _worker_start(parent: int) -> None:
    """Worker initialiser: one torch thread per process (several such processes beat one with many threads here),
    and a watcher that ends the worker when its parent (the kernel, or the Python session) dies, however it died."""
    import threading

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True).start()


def run_parallel(
    fn, jobs: list[dict], workers: int = 2, desc: str = "jobs", keep=None, executor: str | None = None
) -> list:
    """``[fn(**job) for job in jobs]`` on an executor, in job order.

    ``executor`` (default ``$MOE_EXECUTOR``, else "processes"; see ``moe_utils.executors``) chooses where the jobs
    run: ``workers`` fresh local processes (spawned, one torch thread each), a Dask cluster or Slurm. ``fn`` must be
    importable (a module-level function); with "processes" and ``workers=1`` the jobs run here, one after another.
    Each job must seed its own randomness, so the results do not depend on where they ran. ``keep`` (an
    ``io.trained.KeptRuns``) loads the jobs it has kept instead of running them and keeps each other job's result as
    soon as it arrives; a failed job is reported in one line with its seed once the others have finished (and been
    kept), so a re-run redoes only the failed ones. Ctrl-C cancels the queued jobs and ends the running ones.
    """
    from .errors import check_positive
    from .executors import job_failure, parse_executor

    check_positive("WORKERS", workers)
    spec = parse_executor(executor)  # a bad or missing engine: one line, before any work
    results = [keep.load(fn, job) for job in jobs] if keep is not None else [None] * len(jobs)
    todo = [i for i, r in enumerate(results) if r is None] if keep is not None else list(range(len(jobs)))
    failed = []
    for i, outcome in run_jobs(fn, [jobs[i] for i in todo], spec, workers, desc):
        index = todo[i]
        if isinstance(outcome, BaseException):
            failed.append(job_failure(jobs[index], outcome))
            continue
        results[index] = outcome
        if keep is not None:
            keep.save(fn, jobs[index], outcome)
    if keep is not None:
        print(keep.summary())
    if failed:
        kept = " (the others' results are kept)" if keep is not None and len(failed) < len(todo) else ""
        raise MoeError(f"{len(failed)} of {len(todo)} job(s) failed{kept}: {'; '.join(failed)}")
    return results


def run_jobs(fn, jobs: list[dict], spec, workers: int, desc: str):
    """(index, result or the exception it raised) for each job, as they finish; here, in processes, on Dask or on
    Slurm as ``spec`` says."""
    if not jobs:
        return
    if spec.engine == "processes" and (workers == 1 or len(jobs) <= 1):
        for i, job in enumerate(progress(jobs, desc=desc)):
            yield i, fn(**job)  # here: an error keeps its own traceback
        return
    from concurrent.futures import as_completed

    from .executors import dask_executor, one_thread_call, slurm_executor

    n = min(workers, len(jobs))
    if spec.engine == "processes":
        pool, label = process_pool(n), f"{desc} ({n} processes)"
        context = contextlib.nullcontext(pool)
    elif spec.engine == "dask":
        context, label = dask_executor(spec.target, n), f"{desc} (Dask {spec.target})"
    else:
        context, label = slurm_executor(spec.target, n), f"{desc} (Slurm {spec.target})"
    with context as pool:
        futures = {}
        try:
            for i, job in enumerate(jobs):
                futures[pool.submit(one_thread_call, fn, job)] = i
            pending = futures if spec.engine != "slurm" else None
            finished = as_completed(pending) if pending is not None else slurm_completed(futures)
            for future in progress(finished, desc=label, total=len(futures)):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()
        except BaseException:  # Ctrl-C (or the caller stopping): cancel what is queued, end what runs
            cancel(pool, futures, spec)
            raise
        if spec.engine == "processes":
            pool.shutdown()


def slurm_completed(futures: dict):
    """submitit jobs as they finish (they are not concurrent.futures futures)."""
    import time

    waiting = list(futures)
    while waiting:
        done = [job for job in waiting if job.done()]
        for job in done:
            waiting.remove(job)
            yield job
        if waiting and not done:
            time.sleep(1)


def process_pool(n: int):
    """``n`` spawned worker processes on this machine, each on one torch thread and ended with its parent."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # fork would copy a kernel's threads and locks
    return ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),))


def cancel(pool, futures: dict, spec) -> None:
    """Cancel the queued jobs and end the running ones."""
    for future in futures:
        future.cancel()
    if spec.engine == "processes":
        workers_now = list((pool._processes or {}).values())  # the pool has no public way to stop running jobs
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_now:
            process.terminate()
        for process in workers_now:
            process.join(timeout=5)
