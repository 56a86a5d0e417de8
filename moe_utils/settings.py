"""The base of every study's frozen settings: built from a notebook's UPPER_CASE parameters in one call, validated on
construction under those names, with the quick profile's sizes as caps of the full ones."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import ClassVar

from .errors import MoeError, check_bool, check_choice, check_finite, check_int, check_nonnegative, check_positive
from .executors import parse_executor
from .io import paths
from .io.notebook_errors import one_line_errors
from .io.trained import NOT_IN_KEY, KeptRuns
from .runtime import PROFILES, resolve_device
from .stats import seed_list


class StudySettings:
    """Mixin for a frozen dataclass of a notebook's parameters (field ``lr`` <-> parameter ``LR``)."""

    NOTEBOOK: ClassVar[str] = ""  # the notebook these settings belong to, e.g. "02_four_models"
    QUICK_SIZES: ClassVar[dict] = {}  # field -> cap in the quick profile
    POSITIVE: ClassVar[tuple] = ()  # positive-int fields
    POSITIVE_FLOATS: ClassVar[tuple] = ()  # positive finite-number fields
    NONNEGATIVE: ClassVar[tuple] = ()  # non-negative finite-number fields

    @classmethod
    def from_parameters(cls, namespace: dict | None = None, /, **parameters):
        """Settings from a notebook's parameters: its namespace (``globals()``: each field from its UPPER_CASE name,
        other names ignored) or the parameters by name (``MODEL=…, SEED=…``: an unknown name is a one-line error).
        Building them only validates; ``for_notebook`` also prepares the notebook."""
        names = {f.name.upper(): f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(parameters) - set(names))
        if unknown:
            raise MoeError(f"unknown parameter(s) {unknown}; known: {', '.join(names)}")
        given = {**(namespace or {}), **parameters}
        return cls(**{field: given[upper] for upper, field in names.items() if upper in given})

    @classmethod
    def for_notebook(cls, namespace: dict, /):
        """A notebook's settings from its namespace (``globals()``), with the notebook prepared for them: a bad
        parameter shows as one line (not a traceback), and a run with other parameters than the committed one
        writes its figures to a run folder (``choose_output``)."""
        one_line_errors()
        settings = cls.from_parameters(namespace)
        settings.choose_output()
        return settings

    def differences(self) -> list[str]:
        """``NAME=value`` for every parameter that differs from the committed run's (the class defaults)."""
        return [
            f"{f.name.upper()}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.default is not dataclasses.MISSING and getattr(self, f.name) != f.default and f.name not in NOT_IN_KEY
        ]  # RETRAIN, WORKERS and EXECUTOR change how the same results are made: the same committed run

    def choose_output(self) -> None:
        """Outside the pipeline, a run with other parameters than the committed one (another profile, seed, …)
        writes its figures and tables to ``runs/<notebook>/<time>/`` and says so in one line, never over the
        committed ``figures/``; the pipeline (``$MOE_FIGURES_DIR``) and a default full run are left as they are."""
        if not self.NOTEBOOK or os.environ.get(paths.FIGURES_ENV):
            return
        changed = self.differences()
        if not changed:
            paths.set_run_folder(None)
            return
        folder = paths.RUNS_DIR / self.NOTEBOOK / time.strftime("%Y-%m-%dT%H-%M-%S")
        paths.set_run_folder(folder)
        print(
            f"{', '.join(changed)}: not the committed run, so this run's figures and tables go to "
            f"{folder.relative_to(paths.REPO_ROOT) if folder.is_relative_to(paths.REPO_ROOT) else folder}/ "
            "(figures/ keeps the committed full run)"
        )

    def check_common(self) -> None:
        """Validate SEED, DEVICE (CUDA must exist if asked for), PROFILE and the fields named in POSITIVE,
        POSITIVE_FLOATS and NONNEGATIVE."""
        check_int("SEED", self.seed)
        if hasattr(self, "retrain"):
            check_bool("RETRAIN", self.retrain)
        if hasattr(self, "executor"):
            parse_executor(self.executor_choice)  # an unknown form or a missing extra: one line, before any work
        resolve_device(self.device)  # "auto" | "cpu" | "cuda"; "cuda" on a machine without one is refused here
        check_choice("PROFILE", self.profile, PROFILES)
        for name in self.POSITIVE:
            check_positive(name.upper(), getattr(self, name))
        for name in self.POSITIVE_FLOATS:
            check_positive(name.upper(), check_finite(name.upper(), getattr(self, name)), integer=False)
        for name in self.NONNEGATIVE:
            check_nonnegative(name.upper(), check_finite(name.upper(), getattr(self, name)))

    @property
    def executor_choice(self) -> str | None:
        """Where the jobs run (``executors.parse_executor``): EXECUTOR, or None for "auto" ($MOE_EXECUTOR, else
        local processes)."""
        choice = getattr(self, "executor", "auto")
        return None if choice == "auto" else choice

    def kept_runs(self):
        """This notebook's kept runs (``io.trained.KeptRuns``), for ``runtime.run_parallel(..., keep=)``."""
        return KeptRuns(self.NOTEBOOK, self)

    @property
    def sizes(self) -> dict:
        """The run's sizes: each QUICK_SIZES field at its full value, capped in the quick profile."""
        full = {k: getattr(self, k) for k in self.QUICK_SIZES}
        return full if self.profile == "full" else {k: min(v, self.QUICK_SIZES[k]) for k, v in full.items()}

    @property
    def seeds(self) -> list[int]:
        """SEED, SEED + 1, … (N_SEEDS of them, capped in the quick profile); the first is the notebook's SEED."""
        return seed_list(self.seed, self.size("n_seeds"))

    def size(self, name: str):
        """One size of this profile (``settings.size("steps")``)."""
        return self.sizes[name]
