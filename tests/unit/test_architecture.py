"""The package's structure: no import circles between its modules.

Every import counts, wherever it stands: at module level, inside a function (imported later,
but a dependency all the same) or under ``TYPE_CHECKING`` (a dependency of the types). A
module's implicit import of the packages that contain it does not count (it is how Python
finds the module, not a choice of the code), and ``from package import name`` counts as an
import of the submodule ``name`` when there is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_dbt_assets

PACKAGE = Path(pytest_dbt_assets.__file__).parent


def _modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, anywhere in its code."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names
                ]
            else:
                continue
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: each strongly connected group of two or more modules,
    as one circle through them (``a -> b -> a``), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_circle(graph, group) for group in groups)


def _circle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One circle through the first module of ``group``, back to it (breadth first: shortest)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return group


def test_the_package_has_no_import_circles() -> None:
    found = cycles(import_graph(PACKAGE))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_dbt_never_imports_the_project() -> None:
    """``dbt/`` runs dbt for a project it knows by a small protocol, not by ``project.py``."""
    graph = import_graph(PACKAGE)
    importing = sorted(
        name
        for name, targets in graph.items()
        if name.startswith("pytest_dbt_assets.dbt.") and "pytest_dbt_assets.project" in targets
    )
    assert not importing


def test_a_circle_is_found_and_named(tmp_path: Path) -> None:
    """The finder itself: a function-level import and a TYPE_CHECKING one make a circle."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n"
    )
    (package / "c.py").write_text("from pkg import a\n")
    (package / "d.py").write_text("import pkg.a\nfrom . import c\n")
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
