"""Repository conventions: environment.yml matches pyproject, notebooks follow the house layout."""
from __future__ import annotations

import ast
import json
import re

import tomllib

from moe_utils.io import paths
from moe_utils.pipeline import list_notebooks


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())
    env = (paths.REPO_ROOT / "environment.yml").read_text()
    python = re.search(r"^\s*-\s*python=(\d+)\.(\d+)", env, re.M)
    assert python, "environment.yml must pin python"
    minimum = re.search(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, minimum.groups()))
    assert re.search(r"^\s*-\s*-e \.\[dev\]\s*$", env, re.M), "environment.yml must end in pip: [-e .[dev]]"
    assert "dev" in pyproject["project"]["optional-dependencies"]
    dependencies = env.split("\ndependencies:", 1)[1]  # the channels list above it names no packages
    conda_pkgs = re.findall(r"^  - ([A-Za-z0-9_.-]+)", dependencies, re.M)
    declared = {re.split(r"[<>=\[ ]", d)[0].lower() for d in pyproject["project"]["dependencies"]}
    assert set(conda_pkgs) - {"python", "pip"} <= declared, "conda packages must also be pyproject dependencies"


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_notebooks_follow_the_house_layout():
    for path in list_notebooks():
        cells = code_cells(path)
        first = "".join(cells[0]["source"])
        assert first.startswith("%load_ext autoreload\n%autoreload 2"), path.name
        assert "sys.path" not in "".join("".join(c["source"]) for c in cells), path.name
        tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
        assert tagged == [1], f"{path.name}: one parameters cell right after the imports"
        tree = ast.parse("".join(cells[1]["source"]))
        names = {}
        for node in tree.body:
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), f"{path.name}: plain literals only"
            names[node.targets[0].id] = node.value.value
        assert {"SEED", "DEVICE", "PROFILE"} <= set(names), path.name
        assert names["PROFILE"] == "full" and names["DEVICE"] == "auto"
        assert all(n.isupper() for n in names), path.name
        lines = [l for l in "".join(cells[1]["source"]).splitlines() if l.strip()]
        assert all("#" in l for l in lines), f"{path.name}: every parameter needs a comment naming allowed values"
