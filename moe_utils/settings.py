"""The base of every study's frozen settings: built from a notebook's UPPER_CASE parameters in one call, validated on
construction under those names, with the quick profile's sizes as caps of the full ones."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from .errors import MoeError, check_choice, check_finite, check_int, check_nonnegative, check_positive
from .runtime import PROFILES, resolve_device
from .stats import seed_list


class StudySettings:
    """Mixin for a frozen dataclass of a notebook's parameters (field ``lr`` <-> parameter ``LR``)."""

    QUICK_SIZES: ClassVar[dict] = {}  # field -> cap in the quick profile
    POSITIVE: ClassVar[tuple] = ()  # positive-int fields
    POSITIVE_FLOATS: ClassVar[tuple] = ()  # positive finite-number fields
    NONNEGATIVE: ClassVar[tuple] = ()  # non-negative finite-number fields

    @classmethod
    def from_parameters(cls, namespace: dict | None = None, /, **parameters):
        """Settings from a notebook's parameters: its namespace (``globals()``: each field from its UPPER_CASE name,
        other names ignored) or the parameters by name (``MODEL=…, SEED=…``: an unknown name is a one-line error)."""
        names = {f.name.upper(): f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(parameters) - set(names))
        if unknown:
            raise MoeError(f"unknown parameter(s) {unknown}; known: {', '.join(names)}")
        given = {**(namespace or {}), **parameters}
        return cls(**{field: given[upper] for upper, field in names.items() if upper in given})

    def check_common(self) -> None:
        """Validate SEED, DEVICE (CUDA must exist if asked for), PROFILE and the fields named in POSITIVE,
        POSITIVE_FLOATS and NONNEGATIVE."""
        check_int("SEED", self.seed)
        resolve_device(self.device)  # "auto" | "cpu" | "cuda"; "cuda" on a machine without one is refused here
        check_choice("PROFILE", self.profile, PROFILES)
        for name in self.POSITIVE:
            check_positive(name.upper(), getattr(self, name))
        for name in self.POSITIVE_FLOATS:
            check_positive(name.upper(), check_finite(name.upper(), getattr(self, name)), integer=False)
        for name in self.NONNEGATIVE:
            check_nonnegative(name.upper(), check_finite(name.upper(), getattr(self, name)))

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
