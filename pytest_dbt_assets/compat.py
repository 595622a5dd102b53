"""Every touch of another package's internals (dbt, dagster-dbt, Dagster, syrupy), in one place.

An upgrade review reads this file only. Each touch is a small function here, registered with
:func:`shim`: the package it reaches into, what it uses, and a check that says, in one line
naming the shim, what an installed version no longer has. ``tests/test_compat.py`` runs every
check, so an upgrade that breaks a touch fails a test naming it. The version guard is
:data:`TESTED`: a package outside the versions a shim was read against makes that shim's check
fail too, so a new major version gets read before it is trusted.

Everything else in the plugin uses public API. Nothing here imports pytest; imports of the
packages themselves stay inside functions (importing dagster costs seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Distribution -> (lowest, first excluded) versions the shims were read against and are tested
# with: pyproject.toml's ranges, whose two ends `make test` runs (constraints*.txt).
TESTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "dbt-core": ((1, 10, 2), (1, 12)),
    "dbt-duckdb": ((1, 9), (1, 12)),
    "dagster": ((1, 13), (1, 14)),
    "dagster-dbt": ((0, 29), (0, 30)),
    "syrupy": ((7, 0), (8, 0)),
    "pytest": ((8, 0), (10, 0)),
}


@dataclass(frozen=True)
class Shim:
    """One touch of another package's internals and the check that it still holds."""

    name: str  # the function in this module that makes the touch
    package: str  # a key of TESTED
    uses: str  # the internal names relied on, for the reader of a failure
    check: Callable[[], str | None]  # None when the installed package has what the shim uses

    def problem(self) -> str | None:
        found = installed_version(self.package)
        low, high = TESTED[self.package]
        if found is not None and not low <= found < high:
            return (
                f"pytest_dbt_assets.compat.{self.name}: {self.package} {_dotted(found)} is outside the "
                f"versions it was read against (>={_dotted(low)},<{_dotted(high)}); it uses {self.uses}"
            )
        reason = self.check()
        return None if reason is None else f"pytest_dbt_assets.compat.{self.name} ({self.uses}): {reason}"


SHIMS: list[Shim] = []


def shim(package: str, uses: str) -> Callable[[Callable[[], str | None]], Callable[[], str | None]]:
    """Register the decorated check for the shim it is named after (``check_<shim>``)."""
    if package not in TESTED:
        raise ValueError(f"{package} has no tested versions in compat.TESTED")

    def register(check: Callable[[], str | None]) -> Callable[[], str | None]:
        SHIMS.append(Shim(check.__name__.removeprefix("check_"), package, uses, check))
        return check

    return register


def problems() -> list[str]:
    """One line per shim that the installed packages break."""
    return [problem for item in SHIMS if (problem := item.problem()) is not None]


def installed_version(distribution: str) -> tuple[int, ...] | None:
    try:
        text = version(distribution)
    except PackageNotFoundError:
        return None
    parts: list[int] = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _dotted(parts: tuple[int, ...]) -> str:
    return ".".join(map(str, parts))


def missing_attributes(owner: object, *names: str) -> str | None:
    """For checks: which of ``names`` ``owner`` lacks, or None."""
    missing = [name for name in names if not hasattr(owner, name)]
    return f"{getattr(owner, '__name__', owner)!s} has no {', '.join(missing)}" if missing else None


# ---------------------------------------------------------------------------------------------
# dbt-core and dbt-duckdb: the in-process runner and the worker (pytest_dbt_assets/dbt/)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# dbt-core: reading dbt's command line (isolation, argv)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# dagster-dbt and Dagster: materializing (materialize, selection, failures, relocate)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# dagster-dbt and Dagster: manifests and definitions (manifest, definitions, session)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Dagster components (DbtProjectComponent, defs state)
# ---------------------------------------------------------------------------------------------


@contextmanager
def local_defs_state_in(folder: Path) -> Iterator[None]:
    """While loading a components project, keep its local defs state (``.local_defs_state``,
    which Dagster creates beside the user's defs module even to find that there is none) in
    ``folder`` instead. Restored on exit."""
    from dagster.components.utils import project_paths

    original = project_paths.get_local_defs_state_dir

    def state_dir(project_root: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    project_paths.get_local_defs_state_dir = state_dir  # type: ignore[assignment]
    try:
        yield
    finally:
        project_paths.get_local_defs_state_dir = original  # type: ignore[assignment]


@shim("dagster", "dagster.components.utils.project_paths.get_local_defs_state_dir, called by get_local_state_dir")
def check_local_defs_state_in() -> str | None:
    from dagster.components.utils import project_paths

    missing = missing_attributes(project_paths, "get_local_defs_state_dir", "get_local_state_dir")
    if missing is not None:
        return missing
    if "get_local_defs_state_dir" not in project_paths.get_local_state_dir.__code__.co_names:
        return "get_local_state_dir no longer finds its folder through get_local_defs_state_dir"
    return None


def dbt_component_of(assets_def: Any) -> tuple[Any, Any] | None:
    """The ``DbtProjectComponent`` that built ``assets_def`` and the resolution context its
    ``cli_args`` are templated in; None for any other assets definition.

    The component builds ``DbtCliResource(project)`` inside its asset, where no resource
    override reaches; the plugin rebuilds that asset around the component's public
    ``execute(context, dbt)`` with a resource of its own, and needs both to do so.
    """
    from dagster_dbt import DbtProjectComponent

    function: Any = getattr(getattr(getattr(assets_def, "op", None), "compute_fn", None), "decorated_fn", None)
    code = getattr(function, "__code__", None)
    if code is None or not function.__closure__:
        return None
    cells = dict(zip(code.co_freevars, function.__closure__, strict=False))
    if "self" not in cells or "res_ctx" not in cells:
        return None
    component = cells["self"].cell_contents
    if not isinstance(component, DbtProjectComponent):
        return None
    return component, cells["res_ctx"].cell_contents


@shim("dagster-dbt", "DbtProjectComponent.build_defs_from_state's inner asset function closing over self and res_ctx")
def check_dbt_component_of() -> str | None:
    from dagster_dbt import DbtProjectComponent

    inner = [
        const
        for const in DbtProjectComponent.build_defs_from_state.__code__.co_consts
        if hasattr(const, "co_freevars") and {"self", "res_ctx"} <= set(const.co_freevars)
    ]
    return None if inner else "build_defs_from_state has no inner function closing over self and res_ctx"


@contextmanager
def component_resolution_context(context: Any) -> Iterator[None]:
    """Make ``context`` the one ``DbtProjectComponent.get_cli_args`` templates ``cli_args`` in
    (``{{ partition_key }}`` and friends), as the component's own asset does."""
    from dagster_dbt.components.dbt_component_utils import _set_resolution_context

    with _set_resolution_context(context):
        yield


@shim("dagster-dbt", "dagster_dbt.components.dbt_component_utils._set_resolution_context")
def check_component_resolution_context() -> str | None:
    from dagster_dbt.components import dbt_component_utils

    return missing_attributes(dbt_component_utils, "_set_resolution_context")


# ---------------------------------------------------------------------------------------------
# syrupy: snapshot accounting and writing
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# pytest: private attributes of pytest's own objects (listed here too, so that one file holds
# every touch of another package's internals)
# ---------------------------------------------------------------------------------------------
