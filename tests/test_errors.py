"""moe_utils.errors: one-line checks that name the parameter as the user typed it."""

from __future__ import annotations

import pytest

from moe_utils.errors import (
    MoeError,
    check_at_most,
    check_divides,
    check_finite,
    check_int,
    parse_floats,
    parse_positive_ints,
)


def test_checks_name_the_parameter():
    assert check_int("SEED", -3) == -3
    with pytest.raises(MoeError, match="SEED='x' is not allowed; it must be an integer"):
        check_int("SEED", "x")
    with pytest.raises(MoeError, match="TOP_K=9 is not allowed; it must be at most N_EXPERTS=8"):
        check_at_most("TOP_K", 9, "N_EXPERTS", 8)
    with pytest.raises(MoeError, match="N_HEADS=5 is not allowed; it must divide D_MODEL=48"):
        check_divides("N_HEADS", 5, "D_MODEL", 48)
    assert parse_positive_ints("SWEEP_EXPERTS", "1, 2,8") == [1, 2, 8]
    with pytest.raises(MoeError, match="SWEEP_EXPERTS='1,x'"):
        parse_positive_ints("SWEEP_EXPERTS", "1,x")


def test_non_finite_numbers_and_bad_lists_are_refused():
    assert check_finite("LR", 0.5) == 0.5
    for bad in (float("inf"), float("nan"), 1e999, True, "1"):
        with pytest.raises(MoeError, match="LR=.* is not allowed; it must be a finite number"):
            check_finite("LR", bad)
    assert parse_floats("EVAL_SIGMAS", "0, 0.5,1") == [0.0, 0.5, 1.0]
    for bad in ("", "0, x", "-1", "0, inf", "nan"):
        with pytest.raises(MoeError, match="EVAL_SIGMAS="):
            parse_floats("EVAL_SIGMAS", bad)
