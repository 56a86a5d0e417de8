"""README's results sections: every number in them is rendered by moe_utils.readme from the committed figures/*.csv."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from moe_utils import readme
from moe_utils.io import paths

README = (paths.REPO_ROOT / "README.md").read_text()
FIGURES = paths.REPO_ROOT / "figures"
NAMES = [
    "SmolLM2-135M-Instruct",
    "SmolLM2",
    "Gemma 3 270M",
    "Gemma 3",
    "4-bit",
    "Q4_1",
    "Q4_K_M",
    "float32",
    "bf16",
    "DeepSeek-V3",
    "Qwen2/3-MoE",
    "sha256",
    "Apache-2.0",
]  # names that hold digits
NAMES_AND_REFERENCES = "|".join(
    [
        r"`[^`]*`",  # code: file names, parameters, pinned versions
        r"\([^)]*figures/[^)]*\)",  # a figure's path
        r"arXiv:\S+",
        r"(?i:notebooks?\s+\d\d(?:'s)?(?:(?:, | and |–| or )\d\d(?:'s)?)*)",  # notebook numbers
        r"Fig\. [\d–]+",
        r"\b0\d\d\b",  # source documents 000-004
    ]
)


def results_sections() -> dict[str, str]:
    """Heading -> text of every ``## Results`` section."""
    parts = re.split(r"^(## .*)$", README, flags=re.M)
    return {h: body for h, body in zip(parts[1::2], parts[2::2]) if h.startswith("## Results")}


def test_every_results_block_is_what_the_committed_csvs_give():
    assert len(readme.BLOCK.findall(README)) == len(readme.SECTIONS)
    assert readme.render(README, FIGURES) == README, "README.md is stale: run python -m moe_utils.readme"


def test_no_number_in_a_results_section_is_typed_by_hand():
    """Outside the generated blocks a results section holds headings, figures and prose without numbers (names such as
    ``source `004```, notebook numbers, file names and pinned versions in code spans aside)."""
    for heading, body in results_sections().items():
        outside = re.sub(r"```.*?```", "", readme.BLOCK.sub("", body), flags=re.S)  # code blocks: commands
        for name in NAMES:
            outside = outside.replace(name, "")
        outside = re.sub(NAMES_AND_REFERENCES, "", outside)
        assert not re.search(r"\d", outside), (heading, re.findall(r".{0,30}\d.{0,30}", outside)[:3])
    assert len(results_sections()) == len(readme.SECTIONS)


def test_a_changed_csv_changes_the_rendered_numbers(tmp_path):
    """The blocks really read the CSVs: a different final accuracy gives a different README table."""
    for path in FIGURES.glob("*.csv"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    for path in FIGURES.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    final = pd.read_csv(tmp_path / "02_final_accuracy.csv")
    final.loc[final.model == "linear gate", "test"] = 0.1234
    final.to_csv(tmp_path / "02_final_accuracy.csv", index=False)
    changed = readme.render(README, tmp_path)
    assert "| linear gate | " in changed and "| 0.123 |" in changed and changed != README
    assert "learned gates do **not** both beat the pre-designed gate" in changed.replace("\n", " ")


@pytest.mark.parametrize("name", sorted(set(re.findall(r"figures/(\d\d_[a-z0-9_]+)\.(?:csv|png)", README))))
def test_every_figure_the_readme_names_exists(name):
    assert (FIGURES / f"{name}.csv").exists() or (FIGURES / f"{name}.json").exists(), name


def test_the_check_command_reports_a_stale_readme(tmp_path, monkeypatch, capsys):
    stale = README.replace("<!-- /results:02 -->", "stale line\n<!-- /results:02 -->", 1)
    (tmp_path / "README.md").write_text(stale)
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    monkeypatch.setenv(paths.FIGURES_ENV, str(FIGURES))
    assert readme.main(["--check"]) == 1 and "differs" in capsys.readouterr().out
    assert readme.main([]) == 0 and (tmp_path / "README.md").read_text() == README
