"""Run the notebooks in order with papermill: ``python -m moe_utils.pipeline [--profile] [--only] [--output-dir] [--param]``.

Each notebook runs in a staging folder (its figures too); only when it succeeds do the executed notebook and its
figures move into place, so a failing or interrupted run leaves the committed files untouched. The output folder is
checked writable and locked before any work (a second run into it is refused); the kernel's own messages (Jupyter's
warnings, tracebacks on Ctrl-C) go to a log file under ``runs/logs/`` (or ``<output-dir>/logs/``) that errors name.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import fcntl
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import MoeError, check_choice
from .io import paths
from .io.atomic import remove_stale_temporaries, replace_keeping_mode, temporary_prefix
from .runtime import PROFILES, PROGRESS_ENV

KERNEL_NAME = "moe-experiments"
HEARTBEAT_SECONDS = 60.0  # a running notebook's cell and elapsed time are printed this often


def list_notebooks() -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``), in order; executed copies for other models (``NN_name.MODEL.ipynb``)
    are not notebooks of their own."""
    return sorted(p for p in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb") if "." not in p.stem)


def executed_name(notebook: Path, parameters: dict | None) -> str:
    """The executed notebook's file name: ``NN_name.<model>.ipynb`` when ``--param MODEL=…`` names another model
    than the notebook's default (so notebook 08's run on each model is kept), else the notebook's own name."""
    model = (parameters or {}).get("MODEL")
    if model is None:
        return notebook.name
    import papermill as pm

    default = pm.inspect_notebook(str(notebook)).get("MODEL", {}).get("default", "")
    if str(default).strip("'\"") == str(model):
        return notebook.name
    slug = "".join(c if c.isalnum() else "_" for c in Path(str(model).split(",")[0]).name.lower()).strip("_") or "model"
    return f"{notebook.stem}.{slug}.ipynb"


def select_notebooks(only: str | None) -> list[Path]:
    """Notebooks whose two-digit prefix is in the comma-separated ``only`` (all when None)."""
    notebooks = list_notebooks()
    if only is None:
        return notebooks
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    known = [p.name[:2] for p in notebooks]
    if not wanted:
        raise MoeError(f"--only={only!r} is not allowed; it names no notebook; use numbers from {', '.join(known)}")
    for w in wanted:
        check_choice("--only", w, known)
    return [p for p in notebooks if p.name[:2] in wanted]


def notebook_parameters(notebook: Path) -> list[str]:
    """Names of the parameters in a notebook's ``parameters``-tagged cell (papermill's own parser)."""
    import papermill as pm

    return list(pm.inspect_notebook(str(notebook)))


def check_parameter_names(notebooks: list[Path], parameters: dict) -> None:
    """One-line MoeError for the first ``--param`` name that a selected notebook does not have, with the closest names."""
    for notebook in notebooks:
        known = notebook_parameters(notebook)
        for name in parameters:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
                hint = f"closest: {', '.join(close)}" if close else f"its parameters: {', '.join(known)}"
                raise MoeError(
                    f"--param {name}: {notebook.name} has no parameter {name!r} ({hint}); "
                    "use --only to run the notebooks that have it"
                )


def check_output_folder(flag: str, folder: Path) -> None:
    """One-line MoeError when ``folder`` (or the figures folder inside it) exists but is not a folder."""
    for path in (folder, folder / "figures") if flag == "--output-dir" else (folder,):
        if path.exists() and not path.is_dir():
            raise MoeError(f"{flag}={str(folder)!r} is not allowed; {path} is an existing file, not a folder")


def committed_notebooks(folder: Path) -> list[str]:
    """The numbered notebooks in ``folder`` that git tracks (none when git or the folder is absent)."""
    import subprocess

    if not folder.is_dir():
        return []
    try:
        listed = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "--", "[0-9][0-9]_*.ipynb"], capture_output=True, text=True
        )
    except OSError:
        return []
    return listed.stdout.split() if listed.returncode == 0 else []


def check_not_committed(folder: Path) -> None:
    """One-line MoeError when ``--output-dir`` holds committed notebooks (a quick run would overwrite them)."""
    if folder.resolve() == paths.NOTEBOOKS_DIR.resolve() or committed_notebooks(folder):
        raise MoeError(
            f"--output-dir={str(folder)!r} is not allowed; it holds the committed notebooks, which a run would "
            "overwrite; run without --output-dir to re-run them in place, or choose an empty folder"
        )


def check_writable(flag: str, folder: Path) -> None:
    """One-line MoeError, before any work, when files cannot be created in ``folder`` (or, while it does not exist yet,
    in the nearest folder above it, where it would be created); nothing is left behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=temporary_prefix("write-check"), suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MoeError(f"{flag}={str(folder)!r} is not allowed; cannot write there ({reason})") from None


def lock_path(folder: Path) -> Path:
    """The lock file of an output folder, kept under ``runs/locks/`` so the folder itself stays clean."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return paths.RUNS_DIR / "locks" / f"{key}.lock"


@contextlib.contextmanager
def output_lock(flag: str, folder: Path):
    """Hold an exclusive lock on ``folder`` for the run; a second run into the same folder is a one-line MoeError."""
    lock = lock_path(folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise MoeError(
            f"{flag}={str(folder)!r} is in use by another pipeline run ({holder}); wait for it to finish "
            "or choose another --output-dir"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def kernel_output_to(log: Path):
    """Send everything written to file descriptor 2 (the kernel's warnings and tracebacks) to ``log`` meanwhile."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it, else as given."""
    path = Path(path).resolve()
    return str(path.relative_to(paths.REPO_ROOT)) if path.is_relative_to(paths.REPO_ROOT) else str(path)


def record_paths(executed: Path, notebook: Path, output: Path) -> None:
    """Replace papermill's absolute input/output paths (the output a staging file) with the notebook's and its target's."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.setdefault("papermill", {}).update(input_path=shown_path(notebook), output_path=shown_path(output))
    nbformat.write(nb, str(executed))


def kernel_name() -> str:
    """The project's registered kernel if present, else the current interpreter's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def last_full_minutes(notebook: Path) -> float | None:
    """Minutes the committed full run of ``notebook`` took (its papermill record), or None."""
    import json

    try:
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        return float(meta["duration"]) / 60 if meta.get("parameters", {}).get("PROFILE") == "full" else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_cell(executed: Path) -> str | None:
    """ "cell N of M" for the cell papermill marks running in the notebook it is writing, or None."""
    import json

    try:
        cells = [c for c in json.loads(executed.read_text())["cells"] if c.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError):
        return None
    for i, cell in enumerate(cells, 1):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return f"cell {i} of {len(cells)}"
    return None


@contextlib.contextmanager
def heartbeat(name: str, executed: Path, expected: float | None, every: float | None = None):
    """Print, every ``every`` seconds while a notebook runs, its running cell and the elapsed time (and how long its
    last full run took), so a terminal shows where the time goes."""
    stop, every = threading.Event(), every or HEARTBEAT_SECONDS
    started = time.perf_counter()

    def beat():
        while not stop.wait(every):
            cell = running_cell(executed)
            elapsed = (time.perf_counter() - started) / 60
            note = f" (last full run {expected:.1f} min)" if expected else ""
            print(f"  {name}: {cell or 'starting'}, {elapsed:.1f} min{note}", flush=True)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_notebook(
    notebook: Path, output: Path, figures: Path, profile: str, parameters: dict | None = None, log: Path | None = None
) -> float:
    """Execute one notebook into ``output`` and its figures into ``figures``, both only if it succeeds; return seconds.

    The kernel's own stderr goes to ``log`` (default: beside ``output`` under ``logs/``)."""
    import papermill as pm

    started = time.perf_counter()
    log = log or output.parent / "logs" / f"{notebook.stem}.kernel.log"
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=temporary_prefix(notebook.stem), suffix=".staging", dir=output.parent))
    settings = {paths.FIGURES_ENV: str(stage / "figures"), PROGRESS_ENV: "log"}  # the kernel inherits them
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        expected = last_full_minutes(output if output.exists() else notebook) if profile == "full" else None
        with kernel_output_to(log), heartbeat(notebook.stem, stage / notebook.name, expected):
            pm.execute_notebook(
                str(notebook),
                str(stage / notebook.name),
                parameters={"PROFILE": profile, **(parameters or {})},
                kernel_name=kernel_name(),
                cwd=str(notebook.parent),
                progress_bar=False,
            )
        from .readme import fill_summary

        fill_summary(stage / notebook.name, notebook.name[:2], stage / "figures")  # conclusions first, from this run
        record_paths(stage / notebook.name, notebook, output)
        figures.mkdir(parents=True, exist_ok=True)
        for produced in sorted((stage / "figures").glob("*")):
            replace_keeping_mode(produced, figures / produced.name)
        replace_keeping_mode(stage / notebook.name, output)
    except Exception:
        failed = log.with_name(f"{Path(output.name).stem}.failed.ipynb")  # the traceback, for a real failure
        if (stage / notebook.name).exists():
            shutil.move(stage / notebook.name, failed)
        raise
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(stage, ignore_errors=True)
    return time.perf_counter() - started


def run_pipeline(
    profile: str = "full",
    only: str | None = None,
    output_dir: Path | None = None,
    parameters: dict | None = None,
    reuse: bool = False,
) -> dict[str, float]:
    """Run the selected notebooks in order; stop at the first failure, naming notebook and cell.

    Every model is trained again (``$MOE_RETRAIN=1``: an executed notebook is a real run of its source) unless
    ``reuse``, which loads the runs kept in ``data/trained/`` with the same settings and code."""
    check_choice("--profile", profile, PROFILES)
    notebooks = select_notebooks(only)
    check_parameter_names(notebooks, parameters or {})
    if output_dir is not None:
        output_dir = Path(output_dir).resolve()
        check_output_folder("--output-dir", output_dir)
        check_not_committed(output_dir)
        flag, folder, figures = "--output-dir", output_dir, output_dir / "figures"
        figures_flag, logs = flag, output_dir / "logs"
    else:
        figures = paths.figures_dir()
        figures_flag = f"${paths.FIGURES_ENV}" if os.environ.get(paths.FIGURES_ENV) else "figures"
        check_output_folder(figures_flag, figures)
        flag, folder, logs = "notebooks", paths.NOTEBOOKS_DIR, paths.RUNS_DIR / "logs"
    for where, path in ((flag, folder), (figures_flag, figures), ("the kernel logs' folder", logs)):
        check_writable(where, path)
    with output_lock(flag, folder), retrain_policy(reuse):
        for stale in {folder, paths.NOTEBOOKS_DIR, figures, paths.PROCESSED_DIR}:  # the repository's own staging too
            remove_stale_temporaries(stale)
        return run_notebooks(notebooks, profile, output_dir, figures, logs, parameters)


def retrain_policy(reuse: bool):
    """``$MOE_RETRAIN`` for the kernels: "1" (train everything) unless ``reuse``; restored afterwards."""
    return paths.env_set(paths.RETRAIN_ENV, "0" if reuse else "1")


def run_notebooks(
    notebooks: list[Path], profile: str, output_dir: Path | None, figures: Path, logs: Path, parameters: dict | None
) -> dict[str, float]:
    """Run each notebook in turn (the output folder already checked and locked); stop at the first failure."""
    from papermill.exceptions import PapermillExecutionError

    timings = {}
    for notebook in notebooks:
        name = executed_name(notebook, parameters)
        target = (output_dir / name) if output_dir else notebook.with_name(name)
        log = logs / f"{Path(name).stem}.kernel.log"
        print(f"running {notebook.name} (profile {profile}) -> {shown_path(target)}", flush=True)
        try:
            timings[notebook.name] = run_notebook(notebook, target, figures, profile, parameters, log)
        except PapermillExecutionError as exc:
            failed = log.with_name(f"{Path(name).stem}.failed.ipynb")
            # a MoeError is the whole story (a bad parameter, missing data); anything else has a traceback to read
            where = "" if exc.ename == "MoeError" else f" (traceback in {shown_path(failed)})"
            if exc.ename == "MoeError":
                failed.unlink(missing_ok=True)  # kept only for a real failure, whose traceback it holds
            raise MoeError(
                f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                f"{exc.ename}: {' '.join(str(exc.evalue).split())}{where}"
            ) from None
        except KeyboardInterrupt:
            raise Interrupted(log) from None
        print(f"  done in {timings[notebook.name]:.1f} s", flush=True)
    return timings


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a notebook ran; ``log`` is its kernel log."""

    def __init__(self, log: Path):
        super().__init__(f"kernel log: {shown_path(log)}")
        self.log = log


def terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM handler: end the run as Ctrl-C does (kernel and workers ended, staging removed, one line)."""
    global TERMINATED
    TERMINATED = True
    raise KeyboardInterrupt


TERMINATED = False
INTERRUPTED_LOG: Path | None = None  # the kernel log of the notebook that Ctrl-C or SIGTERM stopped


def quiet_from_now_on(log: Path | None) -> None:
    """Send whatever this process still writes to stderr (asyncio's note on nbclient's cancelled task, at exit) to
    ``log``; for the command line only, after its one line."""
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    sys.stderr.flush()
    target = os.open(log if log is not None else os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(target, 2)
    os.close(target)


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (NAME, VALUE as a Python literal, or the plain string if it is none)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not name.isupper():
        raise MoeError(
            f"--param={text!r} is not allowed; write NAME=VALUE with an UPPER_CASE parameter name, e.g. EPOCHS=5"
        )
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Execute the numbered notebooks in order with papermill.")
    parser.add_argument("--profile", default="full", help="full | quick")
    parser.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument(
        "--output-dir", default=None, type=Path, help="write executed notebooks (and figures) here instead of in place"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameters-cell value in every selected notebook (repeatable), e.g. --param SEED=1",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="load the models kept in data/trained/ (same settings and code) instead of training them again",
    )
    args = parser.parse_args(argv)
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, terminate_as_interrupt)
    try:
        parameters = dict(parse_parameter(p) for p in args.param)
        timings = run_pipeline(args.profile, args.only, args.output_dir, parameters, reuse=args.reuse)
    except MoeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        log = f" ({exc.args[0]})" if exc.args else ""
        how = "terminated (SIGTERM)" if TERMINATED else "interrupted"
        print(
            f"error: {how}; the notebook that was running and its figures were left as they were, its kernel and "
            f"workers ended{log}",
            file=sys.stderr,
            flush=True,
        )
        global INTERRUPTED_LOG
        INTERRUPTED_LOG = getattr(exc, "log", None)
        return 143 if TERMINATED else 130
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    print(f"total {sum(timings.values()):.1f} s")
    return 0


if __name__ == "__main__":
    status = main()
    if status in (130, 143):
        quiet_from_now_on(INTERRUPTED_LOG)  # nothing after the one line reaches the terminal
    raise SystemExit(status)
