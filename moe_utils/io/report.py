"""Findings as Markdown rendered from the run's own tables, so every number in the prose comes from code."""

from __future__ import annotations


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown in a notebook (printed elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(text))
    else:
        print(text)


def signed(value: float, digits: int = 1) -> str:
    """A number with an explicit sign and a real minus: ``+1.2`` / ``−0.3``."""
    return f"{value:+.{digits}f}".replace("-", "−")


def share(value: float, digits: int = 0) -> str:
    """A fraction as a percentage: 0.953 -> ``95 %``."""
    return f"{100 * value:.{digits}f} %"


def holds(flag: bool, yes: str = "holds", no: str = "does **not** hold") -> str:
    """The verdict word for a claim that was checked in code."""
    return yes if flag else no


def margin(row, scale: float = 1.0, decimals: int = 3, unit: str = "") -> str:
    """ "+0.238 ± 0.035 (higher in 5 of 5 seeds)" from a paired-margins row."""
    mean, std, n = row["mean"] * scale, row["std"] * scale, int(row["n"])
    side, count = ("higher", int(row["holds"])) if mean >= 0 else ("lower", int(row["below"]))
    return f"{signed(mean, decimals)} ± {std:.{decimals}f}{unit} ({side} in {count} of {n} seeds)"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
