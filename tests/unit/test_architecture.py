"""The structure docs/ARCHITECTURE.md describes, checked on the source: imports run downward only,
with no cycle; no code outside data/kinds/ asks which kind of data it has; models/ never sees DDP;
no private name is imported across modules; no source file over 400 lines. These read files only."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "vaekit"
FILES = sorted(SRC.rglob("*.py"))

# Lowest first; a module may import its own layer and those below (docs/ARCHITECTURE.md, section 1).
LAYERS = {
    0: ("errors", "registry", "files", "version"),
    1: ("sections", "presets", "training"),
    2: ("data",),
    3: ("networks",),
    4: ("distributions",),
    5: ("models",),
    6: ("evaluation",),
    7: ("config", "io", "run", "ldm_runs", "build", "api", ""),  # "": the package root, vaekit/__init__.py
    8: ("applications", "estimators"),
    9: ("cli", "web", "__main__"),
}
GENERIC = ("training", "errors", "registry", "files", "version")  # all training/ may import


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> tuple[int, str]:
    head = (module.split(".")[1:] or [""])[0]
    return next((number, head) for number, names in LAYERS.items() if head in names)


def imports() -> list[tuple[str, str, str]]:
    """(importer, imported, where) for every vaekit import that runs (late ones too; not those
    under ``if TYPE_CHECKING:``)."""
    found = []
    for path in FILES:
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for sub in node.body for n in ast.walk(sub)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vaekit":
                for alias in node.names:  # "from vaekit.data import kinds" imports the module vaekit.data.kinds
                    sub = SRC.parent / (node.module + "." + alias.name).replace(".", "/")
                    is_module = sub.with_suffix(".py").exists() or (sub / "__init__.py").exists()
                    targets.append(f"{node.module}.{alias.name}" if is_module else node.module)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.split(".")[0] == "vaekit"]
            found += [(module_name(path), target, f"{path.relative_to(SRC)}:{node.lineno}")
                      for target in dict.fromkeys(targets)]
    return found


def test_imports_run_downward_only() -> None:
    upward = []
    for importer, imported, where in imports():
        (low, package), (high, target) = layer(importer), layer(imported)
        if high > low or (package == "training" and target not in GENERIC):
            upward.append(f"{where}: {importer} -> {imported}")
    assert upward == []


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported, _ in imports():
        if importer != imported:
            graph[importer].add(imported)
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


KIND_TEST = re.compile(r'\b(spec|raw)\.(vocabulary|columns) is (not )?None|\b(spec|raw)\.kind (==|!=)'
                       r'|vocabulary\.kind (not )?in|\.support == "tokens"|"support", None\)')


def test_only_the_data_kinds_ask_which_kind_of_data_this_is() -> None:
    asked = [f"{path.relative_to(SRC)}:{number}: {line.strip()}" for path in FILES
             if "data/kinds" not in path.as_posix() for number, line in enumerate(path.read_text().splitlines(), 1)
             if KIND_TEST.search(line)]
    assert asked == []


def test_models_never_see_a_ddp_wrapper() -> None:
    unwrapping = [f"{path.relative_to(SRC)}:{number}" for path in FILES if "/models/" in path.as_posix()
                  for number, line in enumerate(path.read_text().splitlines(), 1)
                  if re.search(r'getattr\([^)]*"module"|DistributedDataParallel|\.module\b', line)]
    assert unwrapping == []


def test_no_private_name_is_imported_across_modules() -> None:
    private = [f"{path.relative_to(SRC)}:{number}: {line.strip()}" for path in FILES
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if re.match(r"\s*from vaekit[.\w]* import .*\b_[a-zA-Z]", line)]
    assert private == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_source_file_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400
