"""The house rules, checked on the source (issue 26): a flat service/ grows back one module at a time, an
import cycle or a stray `fastapi` import comes back with one careless line, so the build says so.

Imports are read with ``ast`` (every import, also the ones inside functions: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
PACKAGES = ("service", "index", "scoring", "training")
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL_SERVICE_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from service.api import ui`
    return names


def project_module(name: str) -> str | None:
    """The project module an imported name lives in (``service.core.auth.Role`` → ``service.core.auth``)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def import_graph() -> dict[str, frozenset[str]]:
    graph = {}
    for name, path in modules().items():
        targets = {project_module(imported) for imported in imported_names(path)}
        graph[name] = frozenset(t for t in targets if t and t != name)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_cycles_among_the_projects_modules():
    assert cycles(import_graph()) == []


def test_service_scoring_and_index_never_import_training():
    offenders = sorted(
        (name, target)
        for name, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] == "training" and name.split(".")[0] != "training"
    )
    assert offenders == []


def test_index_is_a_library_that_imports_neither_service_nor_training():
    offenders = sorted(
        (name, target)
        for name, targets in import_graph().items()
        if name.startswith("index")
        for target in targets
        if target.split(".")[0] in ("service", "training")
    )
    assert offenders == []


def test_only_service_api_knows_http():
    allowed = ("service.api", "service.app")
    offenders = sorted(
        name
        for name, path in modules().items()
        if not name.startswith(allowed)
        and any(imported.split(".")[0] in ("fastapi", "starlette") for imported in imported_names(path))
    )
    assert offenders == []


def test_service_keeps_at_most_twelve_modules_at_its_top():
    top = sorted(path.name for path in (ROOT / "service").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_SERVICE_MODULES, top


def function_lengths() -> dict[str, int]:
    lengths = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths[f"{name}.{node.name}"] = max(
                    lengths.get(f"{name}.{node.name}", 0), node.end_lineno - node.lineno + 1
                )
    return lengths


def test_no_function_is_longer_than_a_screen():
    too_long = {name: lines for name, lines in function_lengths().items() if lines > MAX_FUNCTION_LINES}
    assert too_long == {}, f"over {MAX_FUNCTION_LINES} lines: split them"
