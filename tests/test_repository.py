"""Repository conventions: environment.yml matches pyproject, notebooks follow the house layout."""

from __future__ import annotations

import ast
import json
import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package (a dev dependency)
    import tomli as tomllib

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
            literal = isinstance(node.value, ast.Constant) or (
                isinstance(node.value, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.value.elts)
            )  # a number, string or bool, or a tuple of them
            assert isinstance(node, ast.Assign) and literal, f"{path.name}: plain literals only"
            names[node.targets[0].id] = ast.literal_eval(node.value)
        assert {"SEED", "DEVICE", "PROFILE"} <= set(names), path.name
        assert names["PROFILE"] == "full" and names["DEVICE"] == "auto"
        assert all(n.isupper() for n in names), path.name
        lines = [l for l in "".join(cells[1]["source"]).splitlines() if l.strip()]
        assert all("#" in l for l in lines), f"{path.name}: every parameter needs a comment naming allowed values"


LONGEST_CELL = 25  # lines of a code cell; the parameters cell is a list of literals and is not logic


def test_notebooks_keep_logic_and_prose_in_the_package():
    """Settings validate the parameters, report functions write the Findings: no validation cell, no Findings f-string,
    no cell magic, short cells, and one settings object built from the parameters cell."""
    for path in list_notebooks():
        cells = code_cells(path)
        sources = ["".join(c["source"]) for c in cells]
        logic = [s for c, s in zip(cells, sources) if "parameters" not in c["metadata"].get("tags", [])]
        assert not [s for s in sources if s.lstrip().startswith("%%")], f"{path.name}: a cell magic"
        longest = max(len(s.splitlines()) for s in logic)
        assert longest <= LONGEST_CELL, f"{path.name}: a code cell of {longest} lines"
        checks = r"\bcheck_(int|choice|positive|nonnegative|range|bool|at_most|divides|finite|profile)\("
        assert not any(re.search(checks, s) for s in sources), f"{path.name}: validation belongs in settings"
        assert not any(re.search(r"show_markdown\(f[\"']|f\"\"\"", s) for s in sources), (
            f"{path.name}: a Findings f-string"
        )
        assert sum(".for_notebook(globals())" in s for s in sources) == 1 or path.name.startswith("08"), path.name
        assert re.search(r"^show_markdown\(\w*findings\(", sources[-1], re.M), f"{path.name}: Findings from code"


def test_notebooks_check_with_a_message_never_assert():
    """A notebook's sanity checks are ``check_that(condition, what)``: one line naming what should hold."""
    for path in list_notebooks():
        cells = json.loads(path.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        asserts = [line for s in sources for line in s.splitlines() if re.match(r"\s*assert\b", line)]
        assert not asserts, (path.name, asserts)
