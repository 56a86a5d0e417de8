"""The generated passages of README.md and docs/, written from ``figures/*.csv``, the committed notebooks' run
metadata and ``benchmarks/results/``, so that every number in them comes from a run.

    python -m moe_utils.readme            # rewrite every generated block of README.md and docs/*.md
    python -m moe_utils.readme --check    # exit 1 when one of them differs from what the tables give

Each block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; the text around the blocks
(headings, figures) holds no number. ``tests/test_readme.py`` renders every block from the committed tables and
compares.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from .io import paths
from .io.atomic import atomic_path
from .io.report import table
from .studies import (
    cognitive_mirrors,
    data_setup,
    expert_load,
    four_models,
    gate_analysis,
    head_importance,
    layer_activation,
    real_models,
    routing_stability,
    upcycled_moe,
)

BLOCK = re.compile(r"(<!-- results:([a-z0-9_]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)
PAGES = ("README.md", "docs/results.md", "docs/sources.md", "docs/speed.md")  # the files with generated blocks


STUDIES = {  # notebook -> its study package (each with Tables and report.headline / report.readme_section)
    "01": data_setup,
    "02": four_models,
    "03": gate_analysis,
    "04": routing_stability,
    "05": expert_load,
    "06": head_importance,
    "07": layer_activation,
    "09": upcycled_moe,
}
REAL_MODELS = ("smollm2", "gemma3")  # notebook 08's committed runs


def saved_tables(number: str, folder: Path):
    """Notebook ``number``'s saved tables in ``folder``, read through its study's Tables."""
    return STUDIES[number].Tables.load(folder)


def study_section(number: str):
    """A README block: notebook ``number``'s report passage, from its saved tables."""
    return lambda folder: STUDIES[number].report.readme_section(saved_tables(number, folder))


def model_tags(number: str, folder: Path) -> list[str]:
    """The models whose notebook ``number`` (08 or 10) tables are in ``folder``, committed ones first."""
    found = sorted(p.name[3 : -len("_info.json")] for p in Path(folder).glob(f"{number}_*_info.json"))
    return [t for t in REAL_MODELS if t in found] + [t for t in found if t not in REAL_MODELS]


def section_10(folder: Path) -> str:
    """Notebook 10's block: its report's passage, from every model's saved tables."""
    saved = {m: cognitive_mirrors.Tables.load(folder, prefix=f"10_{m}") for m in model_tags("10", folder)}
    return cognitive_mirrors.report.readme_section(saved)


def section_08(folder: Path) -> str:
    """Notebook 08's block: its report's README passage, from both models' saved tables."""
    saved = {m: real_models.Tables.load(folder, prefix=f"08_{m}") for m in REAL_MODELS}
    return real_models.report.readme_section(saved)


NOTEBOOKS = {
    "02": ("02_four_models", "Experiment 1", "004"),
    "03": ("03_gate_analysis", "Experiment 1 over seeds", "004"),
    "04": ("04_routing_stability", "routing stability under noise", "003"),
    "05": ("05_expert_load", "expert load by domain", "000"),
    "06": ("06_head_importance", "head importance per function", "001"),
    "07": ("07_layer_activation", "layer activation over training", "002"),
    "08": ("08_real_models", "real pretrained models", "001`, `002"),
    "09": ("09_upcycled_moe", "an upcycled MoE language model", "000`, `003`, `002"),
    "10": ("10_cognitive_mirrors", "Cognitive Mirrors on CogQA", "001"),
}


def headlines(folder: Path) -> dict[str, str]:
    """One sentence per notebook 02–08, each written by its study's report from its saved tables."""
    return {nn: notebook_headline(nn, folder, list(REAL_MODELS) if nn == "08" else None) for nn in NOTEBOOKS}


CLAIMS = {
    "01": "source 004 classifies the union of MNIST and CIFAR-10, 32 × 32 grayscale, one label space",
    "02": "source 004: jointly learned gates beat a pre-designed gate, and a mixture beats a single expert",
    "03": "source 004's Discussion: how inputs and classes are split between experts, with more or richer experts, "
    "and whether it holds across seeds",
    "04": "source 003: routing can be measured, and regularised, by the Jaccard index of top-k sets under noise",
    "05": "source 000 (DeepSeek-V3): auxiliary-loss-free balancing gives domain-specific experts where an auxiliary "
    "loss keeps loads near 1",
    "06": "source 001 (Cognitive Mirrors): heads are specific to cognitive functions, and masking a function's top "
    "heads hurts it more than random heads",
    "07": "source 002: over training, early layers stay flat and later layers rise",
    "08": "sources 001 and 002 on real pretrained models",
    "09": "sources 000 and 003 hold when the router reads a pretrained model's hidden states (SmolLM2 upcycled into an "
    "MoE)",
    "10": "source 001 as its code does it (CogQA, the paper's probe, elbow and ablation): a function's top heads cost "
    "it more than random heads, and more than a no-signal probe's top heads",
}


def notebook_headline(number: str, folder: Path, tags: list[str] | None = None) -> str:
    """The one-sentence answer of notebook ``number`` from the tables in ``folder`` (one run's figures); for 08, of
    the models ``tags`` (default: every model whose tables are there)."""
    if number == "08":
        tags = tags or sorted(p.name[3:-10] for p in Path(folder).glob("08_*_info.json"))
        return real_models.report.headline({t: real_models.Tables.load(folder, prefix=f"08_{t}") for t in tags})
    if number == "10":
        tags = tags or model_tags("10", folder)
        saved = {t: cognitive_mirrors.Tables.load(folder, prefix=f"10_{t}") for t in tags}
        return cognitive_mirrors.report.headline(saved)
    return STUDIES[number].report.headline(saved_tables(number, folder))


SUMMARY = re.compile(r"(<!-- summary -->\n)(.*?)(<!-- /summary -->)", re.S)


def notebook_summary(number: str, folder: Path, tags: list[str] | None = None) -> str:
    """The summary cell's bullets of notebook ``number``: the claim tested, this run's answer, where the rest is."""
    return "\n".join(
        [
            f"* **The claim**: {CLAIMS[number]}.",
            f"* **This run's answer**: {notebook_headline(number, folder, tags)}.",
            "* **Controls, seeds and margins**: the Findings at the end of this notebook.",
        ]
    )


def fill_summary(executed: Path, number: str, folder: Path, tags: list[str] | None = None) -> None:
    """Write the summary block of an executed notebook (its first markdown cells) from its run's tables (of the
    models ``tags`` only, where given)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and SUMMARY.search(cell.source):
            text = notebook_summary(number, folder, tags)
            cell.source = SUMMARY.sub(lambda m, text=text: m.group(1) + text + "\n" + m.group(3), cell.source)
            nbformat.write(nb, str(executed))
            return


def section_summary(folder: Path) -> str:
    """README's "What it found": one sentence per notebook with its source."""
    lines = headlines(folder)
    return "\n".join(
        f"* **{nn} · {title}** (source `{source}`, `notebooks/{name}.ipynb`): {lines[nn]}."
        for nn, (name, title, source) in NOTEBOOKS.items()
    )


def verdict(*notebooks: str):
    """A docs/sources.md verdict block: the headlines of ``notebooks``."""

    def section(folder: Path) -> str:
        lines = headlines(folder)
        return "\n".join(f"  * notebook {nn}: {lines[nn]}." for nn in notebooks)

    return section


def section_run_times(folder: Path) -> str:
    """docs/speed.md: the wall time of each committed notebook's full run, from its papermill metadata."""
    rows, total = [], 0.0
    for notebook in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        seconds = float(meta.get("duration") or 0)
        if notebook.name < "08":
            total += seconds
        rows.append(
            [f"`{notebook.name}`", f"{seconds / 60:.1f} min", str(meta.get("start_time", ""))[:16].replace("T", " ")]
        )
    text = table(["notebook", "full run", "started (UTC)"], rows)
    return f"{text}\n\nNotebooks 01–07 together: **{total / 60:.1f} min**."


def run_minutes() -> dict[str, float]:
    """Minutes of each committed notebook's full run (file stem -> minutes), from its papermill record."""
    minutes = {}
    for notebook in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(notebook.read_text())["metadata"].get("papermill", {})
        minutes[notebook.stem] = float(meta.get("duration") or 0) / 60
    return minutes


def section_full_run(folder: Path) -> str:
    """README's quick start: how long ``make run`` takes, from the committed notebooks' records."""
    minutes = run_minutes()
    first = sum(m for name, m in minutes.items() if name < "08")
    later: dict[str, list[float]] = {}
    for name, m in minutes.items():
        if name >= "08":
            later.setdefault(name[:2], []).append(m)
    parts = [
        f"{min(v):.0f}–{max(v):.0f} min per model for {nn}" if len(v) > 1 else f"{v[0]:.0f} min for {nn}"
        for nn, v in sorted(later.items())
    ]
    return (
        f"`make run` re-runs every notebook in place: about {first:.0f} min for notebooks 01–07, {', '.join(parts)} "
        "on a two-core CPU (`docs/speed.md`)."
    )


def bench(name: str) -> pd.DataFrame:
    """A benchmark's committed table (``benchmarks/results/<name>.csv``)."""
    return pd.read_csv(paths.REPO_ROOT / "benchmarks" / "results" / f"{name}.csv")


LAYER_COLUMNS = ["d_model", "d_expert", "experts", "top-k", "tokens", "ours", "Mixtral block", "dense"]
LAYER_COLUMNS += ["ours / Mixtral", "ours / dense"]


SMOLLM2_COLUMNS = ["tokens", "ours", "transformers grouped_mm", "transformers eager", "transformers batched_mm"]
SMOLLM2_COLUMNS += ["ours / their fastest"]


def section_speed_09() -> str:
    """docs/speed.md: notebook 09's MoE layer at SmolLM2's shapes and its training step's share of the CPU."""
    layer = bench("bench_moe_layer_smollm2")
    rows = [
        [
            f"{r['tokens']:,}",
            f"{r['tok_s_ours']:,.0f}",
            f"{r['tok_s_hf']:,.0f}",
            f"{r['tok_s_hf-eager']:,.0f}",
            f"{r['tok_s_hf-batched']:,.0f}" if pd.notna(r.get("tok_s_hf-batched")) else str(r["hf-batched"]),
            f"{r['ours/fastest transformers']:.2f}",
        ]
        for _, r in layer.iterrows()
    ]
    step = bench("bench_studies")
    step = step[step["study"] == "09 upcycled MoE"].iloc[0]
    first = layer.iloc[0]
    return f"""**Notebook 09's MoE layer** (`benchmarks/bench_moe_layer.py --preset smollm2`; {first["machine"]}): forward +
backward tokens/s at SmolLM2's shapes (d = {first["d_model"]}, {first["n_experts"]} experts of width {first["d_expert"]},
top-{first["top_k"]}) of our `MoEFeedForward` against transformers' experts implementations on the same weights.

{table(SMOLLM2_COLUMNS, rows)}

**Notebook 09's training step** ({step["measure"]}: its MoE blocks and the LM head from cached inputs): FLOPs counted
with the experts on plain matmuls, timed with the implementation it trains with: {step["MFLOP per step"]:,.0f} MFLOP in
{step["ms per step"]:.0f} ms, {step["GFLOP/s"]:.1f} GFLOP/s, **{100 * step["of peak"]:.0f} % of the matmul peak on as
many threads** ({step["peak_gflops_same_threads"]:.1f} GFLOP/s, measured in the same run); {step["tokens/s"]:.0f}
tokens/s."""


def section_speed(folder: Path) -> str:
    """docs/speed.md: the data path, the MoE layer and the studies' share of the CPU, from the benchmarks' tables."""
    train = bench("bench_train")
    train_rows = [
        [r.pipeline, f"{r.seconds_per_epoch:.2f}", f"{r.speedup_vs_baseline:.1f}×"] for r in train.itertuples()
    ]
    layer = bench("bench_moe_layer")
    layer_rows = [
        [
            str(r["d_model"]),
            str(r["d_expert"]),
            str(r["n_experts"]),
            str(r["top_k"]),
            f"{r['tokens']:,}",
            f"{r['tok_s_ours']:,.0f}",
            f"{r['tok_s_hf']:,.0f}",
            f"{r['tok_s_dense']:,.0f}",
            f"{r['ours/hf']:.2f}",
            f"{r['ours/dense']:.2f}",
        ]
        for _, r in layer.iterrows()
    ]
    studies = bench("bench_studies")
    steps = studies[studies["measure"] == "one training step"]
    study_rows = [
        [
            r["study"],
            f"{r['MFLOP per step']:,.0f}",
            f"{r['ms per step']:.1f}",
            f"{r['GFLOP/s']:.1f}",
            f"{100 * r['of peak']:.1f} %",
        ]
        for _, r in steps.iterrows()
    ]
    dispatch = bench("dispatch_before_after").set_index("dispatch")
    return f"""**Training data path** (`benchmarks/bench_train.py`; {train.machine.iloc[0].split()[0]}, load average
{train.load_average_1min_before.iloc[0]:.2f} before the run): seconds per epoch of Experiment 1's four models against a
conventional `DataLoader` with per-sample transforms, and the optimiser steps alone on one fixed batch (the floor).

{table(["pipeline", "s / epoch", "speed-up vs conventional"], train_rows)}

**MoE layer** (`benchmarks/bench_moe_layer.py --preset cpu`; {layer.iloc[0, -3]}): forward + backward tokens/s of our
`MoEFeedForward` against transformers' `MixtralSparseMoeBlock` on the same weights and a dense SwiGLU with the same
active parameters.

{table(LAYER_COLUMNS, layer_rows)}

**Dispatch and digits** (`benchmarks/dispatch_before_after.py`): notebook 04's baseline trained with
`torch._grouped_mm` and with the per-expert loop gives test accuracy {dispatch.loc["grouped_mm", "test_accuracy"]:.4f}
vs {dispatch.loc["loop", "test_accuracy"]:.4f} and mean Jaccard at σ = 0.5
{dispatch.loc["grouped_mm", "mean_jaccard_sigma_0.5"]:.3f} vs {dispatch.loc["loop", "mean_jaccard_sigma_0.5"]:.3f}:
float rounding grows over training to the size of the seed spread, which is why 04–07 report seeds.

**The studies' share of the CPU** (`benchmarks/bench_studies.py`; one thread, as the studies train; this CPU's
one-thread matmul peak {steps["peak_gflops"].iloc[0]:.1f} GFLOP/s measured in the same run):

{table(["study", "MFLOP per step", "ms per step", "GFLOP/s", "of the matmul peak"], study_rows)}

{section_speed_09()}"""


SECTIONS = {
    "summary": section_summary,
    "verdict_000": verdict("05", "09"),
    "verdict_001": verdict("06", "08", "10"),
    "verdict_002": verdict("07"),
    "verdict_003": verdict("04", "09"),
    "verdict_004": verdict("02", "03"),
    **{number: study_section(number) for number in STUDIES if number != "01"},  # 01's summary line is its headline
    "08": section_08,
    "10": section_10,
    "run_times": section_run_times,
    "full_run": section_full_run,
    "speed": section_speed,
}


def render(readme: str, figures: Path) -> str:
    """``readme`` with every generated block rewritten from the tables in ``figures``."""
    return BLOCK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)](figures) + "\n" + m.group(4), readme)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is not what the tables give")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        path = paths.REPO_ROOT / page
        old = path.read_text()
        new = render(old, paths.figures_dir())
        if new != old:
            stale.append(page)
            if not args.check:
                with atomic_path(path) as tmp:
                    Path(tmp).write_text(new)
    if args.check:
        print(
            f"{', '.join(stale)} differ(s) from the tables: run python -m moe_utils.readme" if stale else "up to date"
        )
        return int(bool(stale))
    print(f"rewrote {', '.join(stale) or 'nothing'} from {paths.figures_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
