"""The package layout: subpackages by concern, imports only downward, a docstring on every module and public function."""

from __future__ import annotations

import ast
from pathlib import Path

import moe_utils

PACKAGE = Path(moe_utils.__file__).parent
TOP_LEVEL = {"errors", "runtime", "stats", "settings", "pipeline", "readme", "measure", "executors"}
SUBPACKAGES = {"io", "datasets", "exp1", "measures", "moe", "studies", "hf"}
BASE = {"errors", "runtime", "io"}
# What each group may import from moe_utils (besides itself): lower layers never import upper ones; exp1 and moe are independent.
ALLOWED = {
    "errors": set(),
    "runtime": {"errors", "executors", "io"},  # run_parallel sends jobs to the chosen executor
    "stats": {"errors"},  # summaries over seeds, margins, bootstrap: below exp1 and studies alike
    "settings": {"errors", "io", "runtime", "stats", "executors"},
    "io": {"errors"},
    "datasets": BASE,
    "exp1": BASE | {"datasets", "stats", "settings"},
    "measures": BASE | {"stats"},  # shared by our models (studies) and external ones (hf): below both
    "moe": BASE | {"measures"},
    # One package per study: studies import measures, models (moe, exp1, hf), datasets and io, never each other.
    "studies": BASE | {"datasets", "moe", "exp1", "hf", "measures", "stats", "settings"},
    "hf": BASE | {"datasets", "moe", "measures"},  # Hugging Face models: loading, hooks, scoring; below the studies
    "executors": {"errors", "io"},  # where jobs run: processes, Dask, Slurm
    "measure": BASE | {"hf", "studies"},  # notebook 08's measures as a command on one's own checkpoint
    "pipeline": BASE | {"readme"},  # the summary cell at the top of an executed notebook, from its run's tables
    "readme": BASE | {"studies"},  # README and docs blocks: each study's report, from its Tables
}


def modules() -> dict[str, Path]:
    """Dotted name (without ``moe_utils.``) -> file, for every module of the package."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_groups(name: str, path: Path) -> set[str]:
    """The top-level groups of moe_utils that module ``name`` imports."""
    here = name.split(".")[:-1] if not path.name == "__init__.py" else name.split(".")[:-1]
    groups = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from . import x" at the top level
                    target = [node.names[0].name]
            elif node.module and node.module.startswith("moe_utils"):
                target = node.module.split(".")[1:] or [node.names[0].name]
            else:
                continue
            groups.add(target[0])
        elif isinstance(node, ast.Import):
            groups |= {a.name.split(".")[1] for a in node.names if a.name.startswith("moe_utils.")}
    return groups


def test_top_level_is_small_and_the_rest_lives_in_subpackages():
    top = {n for n in modules() if "." not in n and n != "__init__"}
    assert top == TOP_LEVEL
    assert {n.split(".")[0] for n in modules() if "." in n} == SUBPACKAGES


def test_imports_only_go_downward():
    for name, path in modules().items():
        group = name.split(".")[0]
        if group == "__init__":
            continue
        wrong = imported_groups(name, path) - ALLOWED[group] - {group}
        assert not wrong, f"moe_utils.{name} imports {sorted(wrong)}"


STUDY_FILES = {"__init__", "settings", "job", "run", "tables", "report", "plots", "explore"}
STUDY_ENTRY_POINTS = {"Settings", "Tables", "run", "findings", "plots", "explorer"}
# Experiment 1's studies (notebooks 01-03) have static figures only, and notebook 01 trains nothing.
WITHOUT_FILES = {"data_setup": {"job", "explore"}, "four_models": {"explore"}, "gate_analysis": {"explore"}}
WITHOUT_ENTRY_POINTS = {name: {"explorer"} for name in WITHOUT_FILES}


def study_packages() -> list[Path]:
    """The study packages under ``moe_utils/studies/``."""
    return sorted(p for p in (PACKAGE / "studies").iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_every_study_is_one_package_with_the_same_files():
    studies = study_packages()
    assert studies, "no study packages"
    loose = {p.name for p in (PACKAGE / "studies").glob("*.py")} - {"__init__.py"}
    assert not loose, f"study files outside a study package: {sorted(loose)}"
    for study in studies:
        files = {p.stem for p in study.glob("*.py")} | WITHOUT_FILES.get(study.name, set())
        assert STUDY_FILES <= files, f"{study.name} lacks {sorted(STUDY_FILES - files)}"
        assert files <= STUDY_FILES | {"method"}, f"{study.name} has other files: {sorted(files - STUDY_FILES)}"


def test_every_study_offers_the_study_protocol():
    import importlib

    from moe_utils.io.tables import Tables
    from moe_utils.settings import StudySettings

    for study in study_packages():
        module = importlib.import_module(f"moe_utils.studies.{study.name}")
        offered = set(dir(module)) | WITHOUT_ENTRY_POINTS.get(study.name, set())
        assert STUDY_ENTRY_POINTS | {"headline"} <= offered, f"{study.name} lacks {STUDY_ENTRY_POINTS - offered}"
        assert issubclass(module.Settings, StudySettings) and issubclass(module.Tables, Tables)
        assert module.Tables.FILES, f"{study.name}'s Tables names no files"


def test_studies_never_import_each_other():
    for study in study_packages():
        for path in study.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..other_study import …
                    raise AssertionError(
                        f"{study.name}/{path.name} imports the study {node.module or node.names[0].name}"
                    )
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("moe_utils.studies."):
                    other = node.module.split(".")[2]
                    assert other == study.name, f"{study.name}/{path.name} imports the study {other}"


def test_no_import_cycles():
    graph = {name: set() for name in modules()}
    for name, path in modules().items():
        package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + (node.module.split(".") if node.module else []))
                for alias in node.names:
                    for candidate in (f"{target}.{alias.name}" if target else alias.name, target):
                        if candidate in graph and candidate != name:
                            graph[name].add(candidate)
                            break
    seen, stack = {}, []

    def visit(node):
        seen[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if seen.get(nxt) == "open":
                raise AssertionError(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = "done"

    for node in graph:
        if node not in seen:
            visit(node)


def public_definitions(tree: ast.Module):
    """Top-level functions and classes, and the methods of those classes (not nested helpers)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node
            if isinstance(node, ast.ClassDef):
                yield from (m for m in node.body if isinstance(m, ast.FunctionDef))


def test_every_module_and_public_function_has_a_docstring():
    missing = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        if not ast.get_docstring(tree):
            missing.append(f"module {name}")
        for node in public_definitions(tree):
            if not node.name.startswith("_") and not ast.get_docstring(node):
                missing.append(f"{name}.{node.name} (line {node.lineno})")
    assert not missing, missing
