"""README and docs/: every number in their results passages is rendered by moe_utils.readme from the committed tables;
the README is a short front door."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from moe_utils import readme
from moe_utils.io import paths

README = (paths.REPO_ROOT / "README.md").read_text()
RESULTS = (paths.REPO_ROOT / "docs" / "results.md").read_text()
PAGES = {page: (paths.REPO_ROOT / page).read_text() for page in readme.PAGES}
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
NOTEBOOK_SECTIONS = [name for name in readme.SECTIONS if name.isdigit()]
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
    """Heading -> text of every section of docs/results.md, and the README's summary."""
    parts = re.split(r"^(## .*)$", RESULTS, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    summary = re.split(r"^(## .*)$", README, flags=re.M)
    sections.update({h: b for h, b in zip(summary[1::2], summary[2::2]) if h == "## What it found"})
    return sections


@pytest.mark.parametrize("page", readme.PAGES)
def test_every_generated_block_is_what_the_committed_tables_give(page):
    assert readme.render(PAGES[page], FIGURES) == PAGES[page], f"{page} is stale: run python -m moe_utils.readme"


def test_every_section_has_one_block_and_every_block_a_section():
    names = [name for text in PAGES.values() for _, name, _, _ in readme.BLOCK.findall(text)]
    assert sorted(names) == sorted(readme.SECTIONS)


def test_the_readme_is_a_short_front_door():
    assert len(README.encode()) <= 12 * 1024, len(README.encode())
    for heading in ("## What it found", "## Quick start", "## Two commands", "## Exploring", "## Where things are"):
        assert heading in README, heading
    for page in re.findall(r"\]\((docs/[^)#]+)\)", README):
        assert (paths.REPO_ROOT / page).exists(), page
    history = re.compile(r"this session|previous (README|session|machine)|issue #\d+|session before", re.I)
    for page, text in PAGES.items():
        assert not history.search(text), (page, history.search(text))


def test_no_number_in_a_results_section_is_typed_by_hand():
    """Outside the generated blocks a results section holds headings, figures and prose without numbers (names such as
    ``source `004```, notebook numbers, file names and pinned versions in code spans aside)."""
    for heading, body in results_sections().items():
        outside = re.sub(r"```.*?```", "", readme.BLOCK.sub("", body), flags=re.S)  # code blocks: commands
        for name in NAMES:
            outside = outside.replace(name, "")
        outside = re.sub(NAMES_AND_REFERENCES, "", outside)
        assert not re.search(r"\d", outside), (heading, re.findall(r".{0,30}\d.{0,30}", outside)[:3])
    assert len(results_sections()) == len(NOTEBOOK_SECTIONS) + 1


def test_a_changed_csv_changes_the_rendered_numbers(tmp_path):
    """The blocks really read the CSVs: a different final accuracy gives a different README table."""
    for path in FIGURES.glob("*.csv"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    for path in FIGURES.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    final = pd.read_csv(tmp_path / "02_final_accuracy.csv")
    final.loc[final.model == "linear gate", "test"] = 0.1234
    final.to_csv(tmp_path / "02_final_accuracy.csv", index=False)
    changed = readme.render(RESULTS, tmp_path)
    assert "| linear gate | " in changed and "| 0.123 |" in changed and changed != RESULTS
    assert "learned gates do **not** both beat the pre-designed gate" in changed.replace("\n", " ")


@pytest.mark.parametrize(
    "name", sorted(set(re.findall(r"figures/(\d\d_[a-z0-9_]+)\.(?:csv|png)", " ".join(PAGES.values()))))
)
def test_every_figure_the_readme_names_exists(name):
    assert (FIGURES / f"{name}.csv").exists() or (FIGURES / f"{name}.json").exists(), name


def test_the_check_command_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    import shutil

    for page, text in PAGES.items():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text(text)
    shutil.copytree(paths.REPO_ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    stale = RESULTS.replace("<!-- /results:02 -->", "stale line\n<!-- /results:02 -->", 1)
    (tmp_path / "docs" / "results.md").write_text(stale)
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    monkeypatch.setenv(paths.FIGURES_ENV, str(FIGURES))
    assert readme.main(["--check"]) == 1 and "docs/results.md differ" in capsys.readouterr().out
    assert readme.main([]) == 0 and (tmp_path / "docs" / "results.md").read_text() == RESULTS


def committed_summary(notebook) -> str | None:
    """The summary block of a committed notebook's first markdown cells, or None."""
    import json

    for cell in json.loads(notebook.read_text())["cells"][:3]:
        found = readme.SUMMARY.search("".join(cell["source"]))
        if cell["cell_type"] == "markdown" and found:
            return found.group(2).strip()
    return None


@pytest.mark.parametrize("notebook", sorted(p.name for p in (paths.REPO_ROOT / "notebooks").glob("[01]*.ipynb")))
def test_each_committed_notebook_opens_with_its_runs_conclusions(notebook):
    path = paths.REPO_ROOT / "notebooks" / notebook
    number = notebook[:2]
    tags = [notebook.split(".")[1] if notebook.count(".") == 2 else "smollm2"] if number in ("08", "10") else None
    assert committed_summary(path) == readme.notebook_summary(number, FIGURES, tags)


def test_the_pipeline_fills_the_summary_from_its_runs_tables(tmp_path):
    import shutil

    import nbformat

    executed = tmp_path / "05_expert_load.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 05"),
            nbformat.v4.new_markdown_cell("**In short**\n\n<!-- summary -->\n<!-- /summary -->"),
        ]
    )
    nbformat.write(nb, str(executed))
    figures = tmp_path / "figures"
    figures.mkdir()
    for path in FIGURES.glob("05_*"):
        shutil.copy(path, figures)
    readme.fill_summary(executed, "05", figures)
    text = nbformat.read(str(executed), as_version=4).cells[1].source
    assert "* **This run's answer**: auxiliary-loss-free balancing" in text and "specialisation +" in text
