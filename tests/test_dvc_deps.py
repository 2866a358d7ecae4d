"""dvc.yaml's deps cover the code each stage runs, and its params cover what the stage reads.

A stage's command is `python -m platereader.stages.<stage>`; this walks the project modules that
module imports (transitively, with `ast`) and fails when one of their files is not under a dep of
the stage, or when the stage reads a params.py name its `params:` do not list. Otherwise DVC would
report "up to date" after code or a parameter the stage uses has changed.
"""

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGE = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (package __init__ or module), None if not ours."""
    base = PACKAGE.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path, name: str) -> set[str]:
    """Dotted names of what `path` (module `name`) imports, with `from x import y` as x.y too."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def closure(module: str) -> set[Path]:
    """Every project file that running `python -m module` imports, parent packages included."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = module_file(".".join(parts[:i]))
            if path and path not in seen:
                seen.add(path)
                todo += imported_modules(path, ".".join(parts[:i]))
    return seen


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_params(stage: dict) -> set[str]:
    names = set()
    for entry in stage.get("params", []):
        if isinstance(entry, dict):
            names |= set(entry.get("params.py", []))
    return names


def params_read(path: Path) -> set[str]:
    """params.py names a stage module reads: params.X and params.X.Y."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "params":
            names.add(node.attr)
    return names


STAGES = stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_deps_cover_every_project_file_the_stage_imports(name):
    stage = STAGES[name]
    module = stage["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [ROOT / d for d in stage.get("deps", [])]
    files = closure(module)
    assert module_file(module) in files
    uncovered = sorted(str(f.relative_to(ROOT)) for f in files
                       if f.read_text().strip() and not any(f == d or d in f.parents for d in deps))
    assert not uncovered, f"stage {name} imports files its deps do not cover: {uncovered}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_params_cover_every_name_the_stage_reads(name):
    stage = STAGES[name]
    module = stage["cmd"].split("python -m ", 1)[1].split()[0]
    listed = {p.split(".")[0] for p in stage_params(stage)}
    missing = params_read(module_file(module)) - listed
    assert not missing, f"stage {name} reads params.py:{sorted(missing)} but its params do not list them"


def test_the_checker_sees_a_missing_dep(tmp_path):
    """The walk follows imports through the library: the reader pulls in the networks."""
    files = {str(f.relative_to(ROOT)) for f in closure("platereader.stages.evaluate_stack")}
    assert "src/platereader/nets/networks.py" in files and "src/platereader/formats.py" in files
