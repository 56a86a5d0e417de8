"""Compare the figures' numbers of two pipeline runs: every CSV/JSON byte for byte, timing columns aside.

    python -m moe_utils.pipeline --profile quick --output-dir /tmp/before   # on the old tree
    python -m moe_utils.pipeline --profile quick --output-dir /tmp/after    # on the new tree
    python benchmarks/compare_runs.py /tmp/before/figures /tmp/after/figures \
        [--rename 02_activation_rates.csv:seed=source_004] [--skip 03_]

``--rename FILE:OLD=NEW`` renames a column of one *before* file first (a renamed column holds the same numbers);
``--skip PREFIX`` leaves out the files whose names start with PREFIX (a notebook whose numbers changed on purpose).
A column is a timing column when its name mentions seconds or time (``train_seconds``, ``generation_seconds``).
Exit status 0 when every file holds the same numbers, 1 otherwise (each difference printed on one line).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

TIMING = re.compile(r"second|time|wall", re.IGNORECASE)


def without_timing(value):
    """A JSON value with every key that names a timing removed, recursively."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if not TIMING.search(str(k))}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def same_numbers(a: Path, b: Path, rename: dict[str, str] | None = None) -> str | None:
    """None when the two files hold the same numbers (timing aside), else a one-line reason."""
    if a.read_bytes() == b.read_bytes():
        return None
    if a.suffix == ".json":
        same = without_timing(json.loads(a.read_text())) == without_timing(json.loads(b.read_text()))
        return None if same else "JSON differs outside timing keys"
    left, right = pd.read_csv(a).rename(columns=rename or {}), pd.read_csv(b)
    if list(left.columns) != list(right.columns):
        return f"columns differ: {list(left.columns)} vs {list(right.columns)}"
    keep = [c for c in left.columns if not TIMING.search(c)]
    if left[keep].to_csv(index=False) != right[keep].to_csv(index=False):
        bad = [c for c in keep if left[c].to_csv(index=False) != right[c].to_csv(index=False)]
        return f"values differ in {bad}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rename", action="append", default=[], metavar="FILE:OLD=NEW", help="a renamed column")
    parser.add_argument("--skip", action="append", default=[], metavar="PREFIX", help="files left out")
    args = parser.parse_args(argv)
    renames: dict[str, dict[str, str]] = {}
    for spec in args.rename:
        file, _, pair = spec.partition(":")
        old, _, new = pair.partition("=")
        renames.setdefault(file, {})[old] = new

    def names(folder: Path) -> set[str]:
        return {
            p.name
            for p in folder.iterdir()
            if p.suffix in (".csv", ".json") and not p.name.startswith(tuple(args.skip))
        }

    before, after = names(args.before), names(args.after)
    problems = [f"{n}: only in {args.before}" for n in sorted(before - after)]
    problems += [f"{n}: only in {args.after}" for n in sorted(after - before)]
    identical = same_bytes = 0
    for name in sorted(before & after):
        reason = same_numbers(args.before / name, args.after / name, renames.get(name))
        if reason:
            problems.append(f"{name}: {reason}")
        else:
            identical += 1
            same_bytes += (args.before / name).read_bytes() == (args.after / name).read_bytes()
    for line in problems:
        print(line)
    print(
        f"{identical} of {len(before | after)} CSV/JSON files hold the same numbers (timing columns aside); "
        f"{same_bytes} of them byte for byte"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
