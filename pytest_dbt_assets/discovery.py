"""Find the dbt projects a Dagster package names, by reading its source (importing nothing).

``@dbt_assets(project=DbtProject(project_dir=...))`` code says where its dbt project is, but
only when imported, and the plugin must make that project's ``target/manifest.json`` before
any user module is imported (see ``plugin.pytest_load_initial_conftests``). So the package's
``DbtProject(...)`` and ``DbtCliResource(...)`` calls are read from its source, and their
``project_dir`` evaluated when it is written in the idioms projects use::

    DbtProject(project_dir=Path(__file__).joinpath("..", "..", "dbt").resolve())
    DBT_DIR = Path(__file__).parent.parent / "dbt"; DbtProject(project_dir=DBT_DIR / "shop")
    DbtCliResource(project_dir=os.fspath(file_relative_path(__file__, "../dbt")))

Anything else (an environment variable, a function call) is not guessed: such code needs
``dbt_assets_project_dir``. What this finds is checked once the definitions are loaded: a
``DbtProject`` or ``DbtCliResource`` naming another dbt project fails the session
(:meth:`DbtAssetsProject.counterpart`).
"""

from __future__ import annotations

import ast
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

# Calls whose project_dir names a dbt project.
_DBT_CALLS = ("DbtProject", "DbtCliResource")
# Folders never read: virtualenvs, caches, VCS, dbt's own output and packages.
_SKIPPED_DIRS = {"target", "dbt_packages", "node_modules", "site-packages", "__pycache__", "venv"}
# A Dagster package is small; past this many files the scan stops (a mis-set definitions key).
_MAX_FILES = 2000


def find_code_dbt_projects(package_dir: Path, *, cwd: Path) -> tuple[Path, ...]:
    """The dbt projects (folders holding ``dbt_project.yml``) named by ``DbtProject(...)``
    or ``DbtCliResource(...)`` calls in the Python files of ``package_dir`` (a package folder
    or a single module file), sorted; relative paths resolve against ``cwd``, the folder
    pytest runs in.

    Example:
        >>> find_code_dbt_projects(Path("/repo/shop_dagster"), cwd=Path("/repo"))
        (PosixPath('/repo/dbt/shop'),)
    """
    found: set[Path] = set()
    for path in itertools.islice(python_files(package_dir), _MAX_FILES):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not any(name + "(" in source for name in _DBT_CALLS):
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        evaluate = _Evaluator(path, tree, base=cwd)
        for argument in _project_dir_arguments(tree):
            folder = evaluate(argument)
            if folder is not None and (folder / "dbt_project.yml").is_file():
                found.add(folder)
    return tuple(sorted(found))


def package_folder(module: str, search: tuple[Path, ...]) -> Path | None:
    """The folder (or ``.py`` file) of ``module``'s top-level package in the first of
    ``search`` that holds it; None when none does."""
    top = module.partition(":")[0].split(".")[0]
    for folder in search:
        for candidate in (folder / top, folder / f"{top}.py"):
            if candidate.is_dir() or candidate.is_file():
                return candidate
    return None


def python_files(root: Path) -> Iterator[Path]:
    """The ``.py`` files of ``root`` (a folder, or one module file), in a stable order,
    leaving out virtualenvs, hidden folders, caches, ``target/`` and ``dbt_packages/``."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        if "pyvenv.cfg" in files:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def _project_dir_arguments(tree: ast.Module) -> Iterator[ast.expr]:
    """The ``project_dir`` argument (keyword, else first positional) of each dbt call."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _name(node.func) not in _DBT_CALLS:
            continue
        keyword = next((k.value for k in node.keywords if k.arg == "project_dir"), None)
        if keyword is not None:
            yield keyword
        elif node.args:
            yield node.args[0]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class _Evaluator:
    """Evaluates the path expressions of one module: literals, ``__file__``, module-level
    names, ``Path(...)`` and its ``/``, ``.parent``, ``.parents[n]``, ``.joinpath()``,
    ``.resolve()``, ``os.path`` helpers, ``os.fspath``/``str`` and Dagster's
    ``file_relative_path``. Returns None for anything else."""

    def __init__(self, path: Path, tree: ast.Module, *, base: Path) -> None:
        self.file = path.resolve()
        self.base = base.resolve()
        self.names: dict[str, ast.expr] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.names[node.target.id] = node.value
        self._resolving: set[str] = set()

    def __call__(self, node: ast.expr) -> Path | None:
        value = self._value(node)
        if value is None:
            return None
        path = Path(value)
        return Path(os.path.normpath(path if path.is_absolute() else self.base / path))

    def _value(self, node: ast.expr) -> str | Path | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self._named(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self._value(node.left), self._value(node.right)
            return None if left is None or right is None else Path(left) / right
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            inner = self._value(node.value)
            return None if inner is None else Path(inner).parent
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            inner, index = self._value(node.value.value), node.slice
            if inner is None or not (isinstance(index, ast.Constant) and isinstance(index.value, int)):
                return None
            parents = Path(inner).parents
            return parents[index.value] if 0 <= index.value < len(parents) else None
        if isinstance(node, ast.Call):
            return self._called(node)
        return None

    def _named(self, name: str) -> str | Path | None:
        if name == "__file__":
            return self.file
        if name not in self.names or name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            return self._value(self.names[name])
        finally:
            self._resolving.discard(name)

    def _called(self, node: ast.Call) -> str | Path | None:
        if node.keywords:
            return None
        args = [self._value(arg) for arg in node.args]
        if any(arg is None for arg in args):
            return None
        values = [arg for arg in args if arg is not None]
        func = node.func
        name = _name(func)
        # A method of a path: Path(...).joinpath(...), .resolve(), .absolute().
        if isinstance(func, ast.Attribute) and name in ("joinpath", "resolve", "absolute", "expanduser"):
            owner = self._value(func.value)
            if owner is None:
                return None
            return Path(owner).joinpath(*values) if name == "joinpath" else Path(owner)
        if name in ("Path", "PurePath", "PosixPath") and values:
            return Path(*values)
        if name in ("fspath", "str", "abspath", "realpath", "normpath") and len(values) == 1:
            return values[0]
        if name == "join" and values:
            return os.path.join(*(str(value) for value in values))
        if name == "dirname" and len(values) == 1:
            return os.path.dirname(str(values[0]))
        if name == "file_relative_path" and len(values) == 2:
            return Path(os.path.dirname(str(values[0]))) / values[1]
        return None
