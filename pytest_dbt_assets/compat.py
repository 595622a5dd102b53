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

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
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


# ---------------------------------------------------------------------------------------------
# syrupy: snapshot accounting and writing
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# pytest: private attributes of pytest's own objects (listed here too, so that one file holds
# every touch of another package's internals)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Dagster: jobs and schedules (graph)
# ---------------------------------------------------------------------------------------------


def job_asset_keys(job: Any) -> set[Any]:
    """The asset keys a resolved ``JobDefinition`` materializes: its selection as Dagster
    resolved it against the code location's asset graph (empty for a job of plain ops, and for
    an asset job whose selection matches nothing). Dagster exposes no public accessor."""
    return set(job.asset_layer.selected_asset_keys)


@shim("dagster", "JobDefinition.asset_layer.selected_asset_keys")
def check_job_asset_keys() -> str | None:
    from dagster import JobDefinition
    from dagster._core.definitions.assets.job.asset_layer import AssetLayer

    return missing_attributes(JobDefinition, "asset_layer") or missing_attributes(AssetLayer, "selected_asset_keys")


def is_dagster_own_job(name: str) -> bool:
    """True for the jobs Dagster makes by itself: ``__ASSET_JOB`` (every asset) and the
    anonymous job of a schedule or sensor given ``target=`` instead of ``job=``."""
    from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name

    return bool(is_reserved_asset_job_name(name))


@shim("dagster", "dagster._core.definitions.assets.job.asset_job.is_reserved_asset_job_name")
def check_is_dagster_own_job() -> str | None:
    try:
        from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name
    except ImportError as exc:
        return str(exc)
    if not is_reserved_asset_job_name("__ASSET_JOB") or is_reserved_asset_job_name("nightly"):
        return "is_reserved_asset_job_name no longer tells __ASSET_JOB from a user's job"
    return None
