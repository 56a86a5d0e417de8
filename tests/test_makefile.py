"""make lab works on git-ignored copies (exploring never dirties tracked files) and passes LAB_ARGS; make html exists."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from moe_utils.io import paths

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args: str) -> str:
    return subprocess.run(["make", *args], cwd=paths.REPO_ROOT, capture_output=True, text=True, check=True).stdout


def tracked_changes() -> str:
    status = subprocess.run(["git", "status", "--porcelain"], cwd=paths.REPO_ROOT, capture_output=True, text=True)
    return status.stdout


def test_lab_copies_the_notebooks_and_tables_and_leaves_tracked_files_alone(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    before = tracked_changes()
    lab = tmp_path / "lab"
    out = make("lab-copies", f"LAB_DIR={lab}")
    names = sorted(p.name for p in (paths.REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in lab.glob("*.ipynb")) == names and out.count("lab: copied") == len(names)
    assert {p.name for p in (lab / "figures").iterdir()} == {p.name for p in (paths.REPO_ROOT / "figures").iterdir()}
    (lab / names[0]).write_text("{}")  # a user's edit in the working copy is kept on the next start
    assert "lab: copied" not in make("lab-copies", f"LAB_DIR={lab}") and (lab / names[0]).read_text() == "{}"
    assert tracked_changes() == before


def test_lab_runs_jupyterlab_on_the_copies_with_the_users_flags():
    dry = make("-n", "lab", "LAB_ARGS=--no-browser --port 8890")
    line = next(line for line in dry.splitlines() if "jupyter lab" in line)
    assert "--notebook-dir=lab" in line and line.endswith("--no-browser --port 8890")
    assert "MOE_FIGURES_DIR=" in line and "/lab/figures" in line  # what the copies write stays in lab/
    makefile = (paths.REPO_ROOT / "Makefile").read_text()
    assert "\nlab: hf " in makefile  # 08's Explore section needs the [hf] extra
    assert "--no-input" in make("-n", "html")
