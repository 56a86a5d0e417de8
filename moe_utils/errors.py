"""The project's exception type and argument checks that produce one-line messages."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class MoeError(ValueError):
    """A user-facing error whose message is one line naming the problem."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a one-line MoeError."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise MoeError(f"{name}={value!r} is not allowed; choose one of {shown}")
    return value


def check_positive(name: str, value: Any, *, integer: bool = True) -> Any:
    """Return ``value`` if it is a positive number (an int when ``integer``), else raise."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise MoeError(f"{name}={value!r} is not allowed; it must be {what}")
    return value


def check_range(name: str, value: Any, low: float, high: float) -> Any:
    """Return ``value`` if ``low <= value <= high``, else raise a one-line MoeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise MoeError(f"{name}={value!r} is not allowed; it must be a number in [{low}, {high}]")
    return value


def check_nonnegative(name: str, value: Any, *, integer: bool = False) -> Any:
    """Return ``value`` if it is a number >= 0 (an int when ``integer``), else raise a one-line MoeError."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
        what = "a non-negative integer" if integer else "a non-negative number"
        raise MoeError(f"{name}={value!r} is not allowed; it must be {what}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise a one-line MoeError."""
    if not isinstance(value, bool):
        raise MoeError(f"{name}={value!r} is not allowed; it must be True or False")
    return value


def check_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer (any sign, not a bool), else raise a one-line MoeError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoeError(f"{name}={value!r} is not allowed; it must be an integer")
    return value


def check_at_most(name: str, value: Any, limit_name: str, limit: int) -> Any:
    """Return ``value`` if it is a positive integer not above ``limit`` (named ``limit_name``), else raise."""
    check_positive(name, value)
    if value > limit:
        raise MoeError(f"{name}={value!r} is not allowed; it must be at most {limit_name}={limit}")
    return value


def check_divides(name: str, value: Any, total_name: str, total: int) -> Any:
    """Return ``value`` if it is a positive integer dividing ``total`` (named ``total_name``), else raise."""
    check_positive(name, value)
    if total % value:
        raise MoeError(f"{name}={value!r} is not allowed; it must divide {total_name}={total}")
    return value


def parse_positive_ints(name: str, text: Any) -> list[int]:
    """Comma-separated positive integers, e.g. ``"1,2,4"`` -> [1, 2, 4]; a one-line MoeError otherwise."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise MoeError(f"{name}={text!r} is not allowed; it must be comma-separated positive integers, e.g. '1,2,4'")
    return values


def check_finite(name: str, value: Any) -> Any:
    """Return ``value`` if it is a finite number, else raise a one-line MoeError (1e999 is infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MoeError(f"{name}={value!r} is not allowed; it must be a finite number")
    return value


def parse_floats(name: str, text: str) -> list[float]:
    """Comma-separated finite non-negative floats, e.g. ``"0, 0.5"`` -> [0.0, 0.5]; a one-line MoeError otherwise."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise MoeError(
            f"{name}={text!r} is not allowed; it must be comma-separated non-negative numbers, e.g. '0, 0.5'"
        )
    return values


def check_that(condition: Any, what: str) -> None:
    """One-line MoeError naming ``what`` should hold when ``condition`` is false (a notebook's sanity check)."""
    if not bool(condition):
        raise MoeError(f"check failed: {what}")
