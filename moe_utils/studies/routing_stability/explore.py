"""Notebook 04's explorer: the Jaccard of one layer and dataset against σ, runs compared at one σ."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ...io import paths
from ...io.explorer import check_choices, explore
from .tables import StabilityTables


def explore_tables(folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """The tables the explorer redraws from: the sweep's curves and the seed study's band (``StabilityTables``)."""
    saved = StabilityTables.load(folder or paths.figures_dir())
    return {"jaccard_vs_sigma": saved.read_back("curves"), "jaccard_seeds": saved.read_back("band")}


def controls(tables: dict) -> dict[str, list]:
    """Run, layer, dataset and σ, as the tables hold them (σ = 0 left out: J = 1 there by definition)."""
    curves = tables["jaccard_vs_sigma"]
    return {
        "run": list(dict.fromkeys(curves["run"])),
        "layer": sorted(int(v) for v in curves["layer"].unique()),
        "dataset": sorted(curves["dataset"].unique()),
        "sigma": [float(s) for s in sorted(curves["sigma"].unique()) if s > 0],
    }


def stability_view(tables: dict, run: str, layer: int, dataset: str, sigma: float) -> plt.Figure:
    """Left: J(σ) of every run at one layer and dataset (the chosen run bold, σ marked); right: the runs at σ,
    first seed, beside the seed study's mean ± std (layers and datasets pooled) where the run was repeated."""
    check_choices(controls(tables), dict(run=run, layer=layer, dataset=dataset, sigma=sigma))
    curves = tables["jaccard_vs_sigma"]
    part = curves[(curves["layer"] == layer) & (curves["dataset"] == dataset)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=[1.2, 1])
    for name, rows in part.groupby("run", sort=False):
        bold = name == run
        left.plot(rows["sigma"], rows["jaccard"], lw=2.2 if bold else 0.8, alpha=1 if bold else 0.35,
                  color="C3" if bold else "grey", label=name if bold else None)  # fmt: skip
    left.axvline(sigma, color="k", ls=":", lw=0.8)
    left.set(xlabel="σ (relative to the router input's RMS)", ylabel="mean Jaccard", ylim=(0, 1.02))
    left.set_title(f"layer {layer}, {dataset}: {run} (bold) against the other runs")
    left.legend(loc="lower left", fontsize=8)
    at = part[part["sigma"] == sigma].set_index("run")["jaccard"]
    colours = ["C3" if name == run else "lightgrey" for name in at.index]
    right.barh(range(len(at)), at.to_numpy(), color=colours)
    seeds = tables["jaccard_seeds"]
    band = seeds[(seeds["noise_at"] == "router input") & (seeds["sigma"] == sigma)].set_index("run")
    for i, name in enumerate(at.index):
        if name in band.index:
            mean, std = band.loc[name, ["jaccard_mean", "jaccard_std"]]
            right.errorbar(mean, i, xerr=std, fmt="o", color="k", ms=3, lw=1)
    right.set_yticks(range(len(at)), at.index, fontsize=8)
    right.invert_yaxis()
    right.set(xlabel="mean Jaccard", xlim=(0, 1))
    right.set_title(f"σ = {sigma}: bars first seed; dots seed mean ± std", fontsize=9)
    fig.tight_layout()
    return fig


def alt_text(choices: dict) -> str:
    """The view's alternative text."""
    return (
        f"Mean Jaccard of the top-2 sets against σ at MoE layer {choices['layer']}, {choices['dataset']} probe tokens, "
        f"run {choices['run']} highlighted; beside it every run's Jaccard at σ = {choices['sigma']}."
    )


def explorer(folder: Path | None = None):
    """Notebook 04's explorer on the tables in ``folder`` (default: this run's figures folder)."""
    tables = explore_tables(folder)
    options = controls(tables)
    default_sigma = 0.5 if 0.5 in options["sigma"] else options["sigma"][len(options["sigma"]) // 2]
    view = lambda **c: stability_view(tables, **c)  # noqa: E731
    return explore(view, options, alt_text, sigma=default_sigma)
