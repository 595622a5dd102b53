"""Every touch of another package's internals (dbt, dagster-dbt, Dagster, syrupy, pytest,
fakesnow), one module per upstream project, and the registry of their checks.

An upgrade review reads this package only. Each touch is a small function in the module of the
project it reaches into (:mod:`.dbt`, :mod:`.dagster_dbt` with :mod:`.dagster_dbt_components`,
:mod:`.dagster`, :mod:`.syrupy`, :mod:`.pytest`, :mod:`.fakesnow`), registered with
:func:`shim`: the package it reaches into, what it uses, and a check that says, in one line
naming the shim, what an installed version no longer has. ``tests/unit/test_compat.py`` runs
every check (:func:`all_shims`), so an upgrade that breaks a touch fails a test naming it. The
version guard is :data:`TESTED`: a package outside the versions a shim was read against makes
that shim's check fail too, so a new major version gets read before it is trusted.

Everything else in the plugin uses public API, and behaviour built on these touches (resources,
patches of the plugin's own) lives in the module that owns it. Nothing here imports pytest, and
no module of this package imports the upstream packages at module level: the plugin imports
compat when pytest loads it, and importing dagster or dbt costs seconds.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

# Distribution -> (lowest, first excluded) versions the shims were read against and are tested
# with: pyproject.toml's ranges, whose two ends `make test` runs (constraints*.txt).
TESTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "dbt-core": ((1, 10, 2), (1, 12)),
    "dbt-duckdb": ((1, 9), (1, 12)),
    "dagster": ((1, 13), (1, 14)),
    "dagster-dbt": ((0, 29), (0, 30)),
    "syrupy": ((7, 0), (8, 0)),
    "pytest": ((8, 0), (10, 0)),
    # The snowflake extra's.
    "fakesnow": ((0, 12, 1), (0, 13)),
}

# The modules of this package holding shims, one per upstream project.
MODULES = ("dbt", "dagster_dbt", "dagster_dbt_components", "dagster", "syrupy", "pytest", "fakesnow")


@dataclass(frozen=True)
class Shim:
    """One touch of another package's internals and the check that it still holds."""

    name: str  # the function that makes the touch
    package: str  # a key of TESTED
    uses: str  # the internal names relied on, for the reader of a failure
    check: Callable[[], str | None]  # None when the installed package has what the shim uses
    module: str = __name__  # the compat module holding the function

    @property
    def qualified_name(self) -> str:
        """``pytest_dbt_assets.compat.<upstream>.<function>``: where to read the touch."""
        return f"{self.module}.{self.name}"

    def problem(self) -> str | None:
        found = installed_version(self.package)
        low, high = TESTED[self.package]
        if found is not None and not low <= found < high:
            return (
                f"{self.qualified_name}: {self.package} {_dotted(found)} is outside the "
                f"versions it was read against (>={_dotted(low)},<{_dotted(high)}); it uses {self.uses}"
            )
        reason = self.check()
        return None if reason is None else f"{self.qualified_name} ({self.uses}): {reason}"


SHIMS: list[Shim] = []


def shim(package: str, uses: str) -> Callable[[Callable[[], str | None]], Callable[[], str | None]]:
    """Register the decorated check for the shim it is named after (``check_<shim>``)."""
    if package not in TESTED:
        raise ValueError(f"{package} has no tested versions in compat.TESTED")

    def register(check: Callable[[], str | None]) -> Callable[[], str | None]:
        SHIMS.append(Shim(check.__name__.removeprefix("check_"), package, uses, check, check.__module__))
        return check

    return register


def all_shims() -> list[Shim]:
    """Every registered shim of every module of this package (imported here: each module
    registers its shims when it is imported, and importing one imports no upstream package)."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return list(SHIMS)


def find_shim(qualified_name: str) -> Shim:
    """The shim ``<upstream>.<function>`` (e.g. ``"syrupy.record_as_skipped"``)."""
    [found] = [item for item in all_shims() if item.qualified_name == f"{__name__}.{qualified_name}"]
    return found


def problems() -> list[str]:
    """One line per shim that the installed packages break."""
    return [problem for item in all_shims() if (problem := item.problem()) is not None]


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


def missing_attributes(owner: object, *names: str, label: str | None = None) -> str | None:
    """For checks: which of ``names`` ``owner`` (called ``label`` in the message) lacks, or None."""
    missing = [name for name in names if not hasattr(owner, name)]
    shown = label if label is not None else f"{getattr(owner, '__name__', owner)!s}"
    return f"{shown} has no {', '.join(missing)}" if missing else None


def lacks(module: str, owner: str | None, *names: str) -> str | None:
    """For checks: what ``module`` (or its attribute ``owner``) lacks of ``names``, or None."""
    try:
        found: object = importlib.import_module(module)
    except ImportError as error:
        return f"cannot import {module} ({error})"
    if owner is not None:
        if not hasattr(found, owner):
            return f"{module} has no {owner}"
        found = getattr(found, owner)
    return missing_attributes(found, *names, label=f"{module}{'.' + owner if owner else ''}")


def field_names(module: str, owner: str) -> set[str] | str:
    """For checks: the dataclass fields of ``module.owner``, or what is wrong."""
    try:
        found = getattr(importlib.import_module(module), owner)
    except (ImportError, AttributeError) as error:
        return f"cannot find {module}.{owner} ({error})"
    if not dataclasses.is_dataclass(found):
        return f"{module}.{owner} is no longer a dataclass"
    return {item.name for item in dataclasses.fields(found)}
