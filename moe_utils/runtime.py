"""Device and profile resolution, and explicit random generators."""

from __future__ import annotations

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


def run_parallel(fn, jobs: list[dict], workers: int = 2, desc: str = "jobs", keep=None) -> list:
    """``[fn(**job) for job in jobs]`` in ``workers`` fresh processes (spawned, one torch thread each), in job order.

    ``fn`` must be importable (a module-level function); with ``workers=1`` the jobs run here, one after another.
    Each job must seed its own randomness, so the results do not depend on ``workers``. ``keep`` (an
    ``io.trained.KeptRuns``) loads the jobs it has kept instead of running them, keeps the others' results and
    prints one line saying which.
    """
    from .errors import check_positive

    check_positive("WORKERS", workers)
    if keep is not None:
        results = [keep.load(fn, job) for job in jobs]
        todo = [i for i, r in enumerate(results) if r is None]
        for i, result in zip(todo, run_parallel(fn, [jobs[i] for i in todo], workers, desc)):
            keep.save(fn, jobs[i], result)
            results[i] = result
        print(keep.summary())
        return results
    if not jobs:
        return []
    if workers == 1 or len(jobs) <= 1:
        return [fn(**job) for job in progress(jobs, desc=desc)]
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # fork would copy a kernel's threads and locks
    start = {"initializer": _worker_start, "initargs": (os.getpid(),)}
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context, **start)
    try:
        futures = [pool.submit(fn, **job) for job in jobs]
        for _ in progress(
            as_completed(futures), desc=f"{desc} ({min(workers, len(jobs))} processes)", total=len(futures)
        ):
            pass
        results = [f.result() for f in futures]
    except BaseException:  # Ctrl-C or a failed job: cancel what is queued and end the running workers now
        workers_now = list((pool._processes or {}).values())  # the pool has no public way to stop running jobs
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_now:
            process.terminate()
        for process in workers_now:
            process.join(timeout=5)
        raise
    pool.shutdown()
    return results
