"""Run the notebooks in order with papermill: ``python -m moe_utils.pipeline [--profile] [--only] [--output-dir]``."""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

from .errors import MoeError, check_choice
from .io import paths
from .io.atomic import atomic_path
from .runtime import PROFILES

KERNEL_NAME = "moe-experiments"


def list_notebooks() -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``), in order."""
    return sorted(p for p in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: str | None) -> list[Path]:
    """Notebooks whose two-digit prefix is in the comma-separated ``only`` (all when None)."""
    notebooks = list_notebooks()
    if not only:
        return notebooks
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    known = [p.name[:2] for p in notebooks]
    for w in wanted:
        check_choice("--only", w, known)
    return [p for p in notebooks if p.name[:2] in wanted]


def kernel_name() -> str:
    """The project's registered kernel if present, else the current interpreter's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def run_notebook(notebook: Path, output: Path, profile: str, parameters: dict | None = None) -> float:
    """Execute one notebook with papermill into ``output`` (written atomically); return seconds taken."""
    import papermill as pm

    started = time.perf_counter()
    with atomic_path(output) as tmp:
        pm.execute_notebook(
            str(notebook),
            str(tmp),
            parameters={"PROFILE": profile, **(parameters or {})},
            kernel_name=kernel_name(),
            cwd=str(notebook.parent),
            progress_bar=False,
        )
    return time.perf_counter() - started


def run_pipeline(profile: str = "full", only: str | None = None, output_dir: Path | None = None, parameters: dict | None = None) -> dict[str, float]:
    """Run the selected notebooks in order; stop at the first failure, naming notebook and cell."""
    from papermill.exceptions import PapermillExecutionError

    check_choice("--profile", profile, PROFILES)
    notebooks = select_notebooks(only)
    previous_figures = os.environ.get(paths.FIGURES_ENV)
    if output_dir is not None:  # the kernels inherit this: figures go beside the executed notebooks
        output_dir = Path(output_dir).resolve()
        output_dir.mkdir(parents=True, exist_ok=True)
        os.environ[paths.FIGURES_ENV] = str(output_dir / "figures")
    timings = {}
    try:
        for notebook in notebooks:
            target = (output_dir / notebook.name) if output_dir else notebook
            print(f"running {notebook.name} (profile {profile}) -> {target}", flush=True)
            try:
                timings[notebook.name] = run_notebook(notebook, target, profile, parameters)
            except PapermillExecutionError as exc:
                raise MoeError(
                    f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                    f"{exc.ename}: {' '.join(str(exc.evalue).split())}"
                ) from None
            print(f"  done in {timings[notebook.name]:.1f} s", flush=True)
    finally:
        if previous_figures is None:
            os.environ.pop(paths.FIGURES_ENV, None)
        else:
            os.environ[paths.FIGURES_ENV] = previous_figures
    return timings


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (NAME, VALUE as a Python literal, or the plain string if it is none)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not name.isupper():
        raise MoeError(f"--param={text!r} is not allowed; write NAME=VALUE with an UPPER_CASE parameter name, e.g. EPOCHS=5")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Execute the numbered notebooks in order with papermill.")
    parser.add_argument("--profile", default="full", help="full | quick")
    parser.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument("--output-dir", default=None, type=Path, help="write executed notebooks (and figures) here instead of in place")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameters-cell value in every selected notebook (repeatable), e.g. --param SEED=1")
    args = parser.parse_args(argv)
    try:
        parameters = dict(parse_parameter(p) for p in args.param)
        timings = run_pipeline(args.profile, args.only, args.output_dir, parameters)
    except MoeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("total {:.1f} s".format(sum(timings.values())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
