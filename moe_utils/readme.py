"""README's results passages, written from ``figures/*.csv`` so that every number in them comes from a run.

    python -m moe_utils.readme            # rewrite the generated blocks of README.md from figures/
    python -m moe_utils.readme --check    # exit 1 when README.md differs from what figures/ gives

Each block sits between ``<!-- results:NN -->`` and ``<!-- /results:NN -->``; the text around the blocks (headings,
figures) holds no number. ``tests/test_readme.py`` renders every block from the committed CSVs and compares.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from .exp1.settings import FourModelsSettings, GateAnalysisSettings
from .io import paths
from .io.atomic import atomic_path
from .io.report import share, signed, table
from .stats import mean_std
from .studies import expert_load, head_importance, layer_activation, real_models, routing_stability

BLOCK = re.compile(r"(<!-- results:(\d\d) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)
GATES = ("linear gate", "1-hidden-layer gate")
MASK, PROBE, CONTROL = "head-mask gradient", "probe gradient × activation", "shuffled-label probe (control)"
DOMAINS = {"wikipedia": "Wikipedia", "github": "GitHub", "dm_mathematics": "DM Mathematics"}


class Figures:
    """The CSV/JSON tables of one figures folder, read once each."""

    def __init__(self, folder: Path):
        self.folder, self.cache = Path(folder), {}

    def __call__(self, name: str) -> pd.DataFrame:
        if name not in self.cache:
            self.cache[name] = pd.read_csv(self.folder / f"{name}.csv")
        return self.cache[name]

    def json(self, name: str) -> dict:
        """A JSON table (``08_*_info``)."""
        return json.loads((self.folder / f"{name}.json").read_text())


def section_02(f: Figures) -> str:
    """Notebook 02: final accuracy and activation rates beside source 004's."""
    s = FourModelsSettings()
    final = f("02_final_accuracy").set_index("model")
    rates = f("02_activation_rates")
    test = rates[rates["split"] == "test"].set_index(["model", "dataset", "expert"]).sort_index()
    gap = (rates[rates.split == "train"].set_index(["model", "dataset", "expert"])["ours"] - test["ours"]).abs().max()
    rate_rows = [
        [
            m,
            d,
            f"{test.loc[(m, d, 1), 'ours']:.2f}",
            f"{test.loc[(m, d, 2), 'ours']:.2f}",
            f"{test.loc[(m, d, 1), 'source_004']:.2f}",
            f"{test.loc[(m, d, 2), 'source_004']:.2f}",
        ]
        for m in ("pre-designed gate", *GATES)
        for d in ("MNIST", "CIFAR")
    ]
    t = final["test"]
    learned = all(t[g] > t["pre-designed gate"] for g in GATES)
    mixtures = all(t[m] > t["single expert"] for m in ("pre-designed gate", *GATES))
    lin = test.loc[("linear gate", "CIFAR"), "ours"]
    return f"""Final accuracy after {s.epochs} epochs (Adam, lr {s.lr:g}, batch {s.batch_size}, TF-style Glorot-uniform init;
seed {s.seed}; mirror data) — `figures/02_final_accuracy.csv`:

{table(["model", "train", "test"], [[m, f"{r.train:.3f}", f"{r.test:.3f}"] for m, r in final.iterrows()])}

Activation rates ActivationRate(i|D) = mean G(X)_i over D (test split; train differs by at most {gap:.3f}) —
`figures/02_activation_rates.csv`:

{table(["model", "dataset", "ours: expert 1", "ours: expert 2", "source 004: expert 1", "source 004: expert 2"], rate_rows)}

Source 004's orderings at seed {s.seed}: learned gates {"beat" if learned else "do **not** both beat"} the pre-designed gate
({signed(t["linear gate"] - t["pre-designed gate"], 4)} and {signed(t["1-hidden-layer gate"] - t["pre-designed gate"], 4)} test
accuracy); the mixtures {"all beat" if mixtures else "do **not** all beat"} the single expert, the pre-designed gate by
{signed(t["pre-designed gate"] - t["single expert"], 4)}. Our linear gate splits CIFAR {lin[1]:.2f} / {lin[2]:.2f}
where source 004's is {test.loc[("linear gate", "CIFAR"), "source_004"][1]:.2f} /
{test.loc[("linear gate", "CIFAR"), "source_004"][2]:.2f}. One seed: notebook 03 checks both across seeds."""


def digits_by_expert(routing: pd.DataFrame, model: str, hard: float = 0.9) -> tuple[list, list]:
    """The first dataset's classes (0-9) whose weight goes to expert 1 / expert 2 (≥ ``hard``) under ``model``."""
    part = routing[(routing["model"] == model) & (routing["class"] < 10)]
    wide = part.pivot(index="class", columns="expert", values="rate")
    return [int(c) for c in wide.index[wide[1] >= hard]], [int(c) for c in wide.index[wide[2] >= hard]]


def section_03(f: Figures) -> str:
    """Notebook 03: source 004's run over seeds, how hard the gates decide, and what makes the split hard."""
    s = GateAnalysisSettings()
    finals = f("03_final_accuracy_seeds")
    n = finals.seed.nunique()
    acc = finals.groupby("model", sort=False)["test"]
    accuracy = ", ".join(f"{mean_std(acc.mean()[m], acc.std()[m])} ({m})" for m in acc.mean().index)
    claims = f("03_claims_seeds").set_index("claim (test accuracy)")

    def claim(c):
        r = claims.loc[c]
        return (
            f"{int(r.holds_in)}/{int(r.seeds)} seeds, {signed(100 * r.margin_mean)} ± {100 * r.margin_std:.1f} points"
        )

    summary = f("03_gate_weight_summary")
    mnist = summary[(summary.split == "test") & (summary.dataset == "MNIST") & (summary.model == GATES[1])]
    one, two = digits_by_expert(f("03_class_routing"), GATES[1])
    hard = f("03_hard_split")
    full = hard[(hard.table == "final, per seed") & hard.variant.str.startswith("02 setting, full data")]
    cifar = full[(full.split == "test") & (full.dataset == "CIFAR")]
    hard_in = {g: int((cifar[cifar.model == g].majority_share >= 0.97).sum()) for g in GATES}
    hs = f("03_hard_split_summary").set_index(["variant", "model"])
    every = [v for (v, m), r in hs.iterrows() if m == GATES[0] and r.seed_like == r.runs]
    ours, raw = "02 setting: tf init, Adam 1e-3, pixels/255", "raw pixels 0-255"
    cost = 100 * (hs.loc[(raw, GATES[0]), "test_accuracy_mean"] - hs.loc[(ours, GATES[0]), "test_accuracy_mean"])
    epochs = hard[(hard.table == "per epoch, training batches") & hard.variant.str.startswith("02 setting, full data")]
    epochs = epochs[epochs.dataset == "CIFAR"].groupby(["model", "epoch"])["majority_share"].mean()
    softer = all(epochs[g].iloc[-1] <= epochs[g].iloc[0] + 0.01 for g in GATES)
    sweep = f("03_expert_sweep")
    test = sweep[sweep.split == "test"]
    big = test[(test.n_experts == test.n_experts.max()) & (test.experts == "mlp")]
    best = big.groupby("model")["test"].first().max()
    single = test[(test.n_experts == 1) & (test.experts == "linear")]["test"].iloc[0]
    majority = test[test.n_experts == test.n_experts.max()]["majority_share"].max()
    strat = f("03_gate_strategies").set_index("model")
    frozen = [f"{g} | frozen experts" for g in GATES]
    pre = strat.loc["pre-designed gate"]
    frozen_match = all(
        abs(strat.loc[m, "test"] - pre.test) < 0.005 and strat.loc[m, "cifar_majority_test"] > 0.99 for m in frozen
    )
    return f"""* **Across {n} seeds** (seeds {s.seed}–{s.seed + n - 1}, full data, {s.seed_epochs} epochs, one process per
  seed) test accuracy is {accuracy} (`figures/03_final_accuracy_seeds.csv`, `figures/03_claims_seeds.csv`). *The linear gate
  beats the pre-designed gate* in {claim("linear gate > pre-designed gate")}; *the 1-hidden-layer gate beats it* in
  {claim("1-hidden-layer gate > pre-designed gate")}; *the pre-designed gate beats the single expert* in
  {claim("pre-designed gate > single expert")}.
* **Gates decide near-hard per input**: {share(mnist["frac_max_gt_0.9"].mean())} of MNIST test inputs get > 0.9 weight
  on one expert under the 1-hidden-layer gate (mean over seeds); at seed {s.seed} its "shared MNIST" is whole digits sent
  to each expert ({", ".join(map(str, one)) or "none"} vs {", ".join(map(str, two)) or "none"}), not soft weights
  (`figures/03_gate_weight_hist.png`, `figures/03_class_routing.png`).
* **Source 004's near-hard CIFAR split is seed-dependent**: CIFAR majority share ≥ 0.97 in {hard_in[GATES[1]]}/{n} seeds for
  the 1-hidden-layer gate, {hard_in[GATES[0]]}/{n} for the linear gate. Of {hs.index.get_level_values(0).nunique()} training
  settings ({s.hard_split_seeds} seeds each), {", ".join(every) or "none"} give{"s" if len(every) == 1 else ""} the linear gate
  source 004's pattern (hard CIFAR, shared MNIST) in every seed; raw 0–255 pixels cost {signed(cost)} points of test accuracy;
  more epochs {"do not make the split harder" if softer else "harden it"} (`figures/03_hard_split.png`).
* **More/richer experts**: {int(test.n_experts.max())} hidden-layer experts reach {best:.3f} against {single:.3f} for one
  linear expert ({share(s.study_fraction)} of the data), and no expert of the {int(test.n_experts.max())}-expert mixtures holds
  more than {share(majority)} of either dataset; **frozen pre-trained experts** make both gates relearn
  {"exactly" if frozen_match else "not quite"} the pre-designed split and its accuracy ({pre.test:.3f};
  `figures/03_expert_sweep.png`, `figures/03_gate_strategies.png`)."""


def section_04(f: Figures) -> str:
    """Notebook 04's block: its report's README passage, from its saved tables."""
    return routing_stability.report.readme_section(routing_stability.Tables.load(f.folder))


def section_05(f: Figures) -> str:
    """Notebook 05's block: its report's README passage, from its saved tables."""
    return expert_load.report.readme_section(expert_load.Tables.load(f.folder))


def section_06(f: Figures) -> str:
    """Notebook 06's block: its report's README passage, from its saved tables."""
    return head_importance.report.readme_section(head_importance.Tables.load(f.folder))


def section_07(f: Figures) -> str:
    """Notebook 07's block: its report's README passage, from its saved tables."""
    return layer_activation.report.readme_section(layer_activation.Tables.load(f.folder))


def section_08(f: Figures) -> str:
    """Notebook 08's block: its report's README passage, from both models' saved tables."""
    saved = {m: real_models.Tables.load(f.folder, prefix=f"08_{m}") for m in ("smollm2", "gemma3")}
    return real_models.report.readme_section(saved)


SECTIONS = {
    "02": section_02,
    "03": section_03,
    "04": section_04,
    "05": section_05,
    "06": section_06,
    "07": section_07,
    "08": section_08,
}


def render(readme: str, figures: Path) -> str:
    """``readme`` with every generated block rewritten from the tables in ``figures``."""
    f = Figures(figures)
    return BLOCK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)](f) + "\n" + m.group(4), readme)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is not what figures/ gives")
    args = parser.parse_args(argv)
    path = paths.REPO_ROOT / "README.md"
    old = path.read_text()
    new = render(old, paths.figures_dir())
    if args.check:
        print(
            "README.md is up to date"
            if new == old
            else "README.md differs from figures/: run python -m moe_utils.readme"
        )
        return int(new != old)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(new)
    print(f"README.md: {len(BLOCK.findall(new))} results blocks written from {paths.figures_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
