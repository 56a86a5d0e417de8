"""Every number in README's results tables equals, to its printed precision, the value in the figures/*.csv it names."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from moe_utils.io import paths

README = (paths.REPO_ROOT / "README.md").read_text()
FIGURES = paths.REPO_ROOT / "figures"


def table_after(marker: str) -> list[list[str]]:
    """Rows (cells as text) of the first Markdown table after ``marker`` in the README, header and rule dropped."""
    start = README.index(marker)
    lines = README[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("*") for c in line.strip("|").split("|")])
    return rows[2:]


def same(printed: str, value: float) -> bool:
    """Whether ``value`` rounds to the number as printed (its decimals)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(round(float(value), decimals) - float(printed)) < 0.5 * 10**-decimals + 1e-12


def test_final_accuracy_table_matches_its_csv():
    final = pd.read_csv(FIGURES / "02_final_accuracy.csv").set_index("model")
    rows = table_after("`figures/02_final_accuracy.csv`")
    assert [r[0] for r in rows] == list(final.index)
    for model, train, test in rows:
        assert same(train, final.loc[model, "train"]) and same(test, final.loc[model, "test"]), model


def test_activation_rate_table_matches_its_csv():
    rates = pd.read_csv(FIGURES / "02_activation_rates.csv")
    test = rates[rates["split"] == "test"].set_index(["model", "dataset", "expert"])
    rows = table_after("`figures/02_activation_rates.csv`")
    assert len(rows) == 6
    for model, dataset, ours1, ours2, seed1, seed2 in rows:
        for expert, ours, seed in ((1, ours1, seed1), (2, ours2, seed2)):
            assert same(ours, test.loc[(model, dataset, expert), "ours"]), (model, dataset, expert)
            assert same(seed, test.loc[(model, dataset, expert), "seed"]), (model, dataset, expert)


def test_expert_load_table_matches_its_csvs():
    seeds = pd.read_csv(FIGURES / "05_specialisation_seeds.csv")
    stats = seeds.groupby(["config", "method"])[["specialisation", "max_relative_load"]].agg(["mean", "std"])
    rows = {r[0]: r[2:] for r in table_after("| | DeepSeek-V3 (paper) | standard")}
    for label, method in (("aux-loss-based", "aux_loss"), ("aux-loss-free", "aux_free")):
        for config, cell in zip(("standard", "fine-grained"), rows[label]):
            spec_mean, spec_std, max_load = re.findall(r"\d+\.\d+", cell)[:3]
            s = stats.loc[(config, method)]
            assert same(spec_mean, s[("specialisation", "mean")]) and same(spec_std, s[("specialisation", "std")]), (label, config)
            assert same(max_load, s[("max_relative_load", "mean")]), (label, config)


@pytest.mark.parametrize("name", sorted(set(re.findall(r"figures/(\d\d_[a-z0-9_]+)\.(?:csv|png)", README))))
def test_every_figure_the_readme_names_exists(name):
    assert (FIGURES / f"{name}.csv").exists() or (FIGURES / f"{name}.json").exists(), name
