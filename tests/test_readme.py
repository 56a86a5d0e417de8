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


def real_model_rows() -> dict[str, list[str]]:
    """README's notebook 08 table, recomputed from figures/08_*.csv (measure -> one cell per model)."""
    def sp(v, d=3):
        return f"{v:+.{d}f}".replace("-", "−")

    def iv(lo, hi, d=3):
        return f"[{lo:.{d}f}, {hi:.{d}f}]".replace("-", "−")

    rows: dict[str, list[str]] = {}
    for m in ("smollm2", "gemma3"):
        acc = pd.read_csv(FIGURES / f"08_{m}_accuracy.csv")
        ab = pd.read_csv(FIGURES / f"08_{m}_ablation.csv")
        spec = pd.read_csv(FIGURES / f"08_{m}_specificity.csv").set_index("method")
        math = pd.read_csv(FIGURES / f"08_{m}_math_vs_others.csv").set_index("method")
        learned = acc[acc["learned"]]
        rows.setdefault("families above chance (of 8)", []).append(f"{len(learned)}")
        for r in acc.itertuples():
            rows.setdefault(f"accuracy: {r.family} (chance)", []).append(f"{r.accuracy:.2f} ({r.chance:.2f})")
        for method, short in (("head-mask gradient", "head-mask"), ("probe gradient × activation", "probe")):
            part = ab[(ab["method"] == method) & ab["family"].isin(learned["family"])]
            rows.setdefault(f"{short}: top − layer-matched random drop, families with interval > 0", []).append(
                f"{int((part['low'] > 0).sum())} of {len(part)}")
            s, q = spec.loc[method], math.loc[method]
            rows.setdefault(f"{short}: own-family − other-family drop [95 %]", []).append(f"{sp(s['difference'])} {iv(s['low'], s['high'])}")
            rows.setdefault(f"{short}: Math cos to others − others' among themselves", []).append(
                sp(q["math vs others (mean cos)"] - q["among the other seven (mean cos)"]))
            rows.setdefault(f"{short}: Math depth centroid − others' mean (layers)", []).append(
                sp(q["math depth centroid"] - q["others' depth centroid (mean)"], 1))
    return rows


def test_real_model_table_matches_its_csvs():
    printed = {r[0]: r[1:] for r in table_after("| measure | SmolLM2-135M-Instruct | Gemma 3 270M |")}
    assert printed == real_model_rows()
