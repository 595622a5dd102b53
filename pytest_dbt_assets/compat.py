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

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest import TempPathFactory

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


def forget_dagster_dbt_manifests() -> None:
    """Empty dagster-dbt's by-path manifest cache, so a module imported (again) in this process
    reads the manifest now on disk. Free when dagster-dbt is not imported yet (nothing cached)."""
    module = sys.modules.get("dagster_dbt.dbt_manifest")
    reader = getattr(module, "read_manifest_path", None)
    if reader is not None and hasattr(reader, "cache_clear"):
        reader.cache_clear()


@shim("dagster-dbt", "dagster_dbt.dbt_manifest.read_manifest_path.cache_clear")
def check_forget_dagster_dbt_manifests() -> str | None:
    try:
        from dagster_dbt.dbt_manifest import read_manifest_path
    except ImportError as error:
        return f"dagster-dbt no longer has {error.name or 'dagster_dbt.dbt_manifest.read_manifest_path'}"
    return None if callable(getattr(read_manifest_path, "cache_clear", None)) else "read_manifest_path is not cached"


def dbt_manifest_metadata_key() -> str:
    """The metadata key under which ``@dbt_assets`` keep the manifest they were built from."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_MANIFEST_METADATA_KEY

    return DAGSTER_DBT_MANIFEST_METADATA_KEY


@shim("dagster-dbt", "dagster_dbt.asset_utils.DAGSTER_DBT_MANIFEST_METADATA_KEY")
def check_dbt_manifest_metadata_key() -> str | None:
    import dagster_dbt.asset_utils

    return missing_attributes(dagster_dbt.asset_utils, "DAGSTER_DBT_MANIFEST_METADATA_KEY")


def dbt_unique_id_metadata_key() -> str:
    """The metadata key under which each dbt asset spec keeps its node's ``unique_id``."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_UNIQUE_ID_METADATA_KEY

    return DAGSTER_DBT_UNIQUE_ID_METADATA_KEY


@shim("dagster-dbt", "dagster_dbt.asset_utils.DAGSTER_DBT_UNIQUE_ID_METADATA_KEY")
def check_dbt_unique_id_metadata_key() -> str | None:
    import dagster_dbt.asset_utils

    return missing_attributes(dagster_dbt.asset_utils, "DAGSTER_DBT_UNIQUE_ID_METADATA_KEY")


# ---------------------------------------------------------------------------------------------
# Dagster components (DbtProjectComponent, defs state)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# syrupy: snapshot accounting and writing
# ---------------------------------------------------------------------------------------------
#
# syrupy counts a snapshot as unused when the test that owns it ran and did not assert it, and
# ``--snapshot-update`` deletes unused snapshots. A test whose plugin fixture failed in set-up (a
# dbt parse error), or that failed before its snapshot assertion, never reached the assertion:
# deleting its snapshot would cost the user their committed baseline. syrupy already keeps the
# snapshots of *skipped* tests, so such a test is recorded with syrupy as skipped (for snapshot
# accounting only; pytest still reports it failed).


def record_as_skipped(config: object, nodeid: str) -> None:
    """Tell syrupy's session (``config._syrupy``) that ``nodeid`` was skipped, so that
    ``--snapshot-update`` keeps its snapshots. Does nothing without a syrupy session."""
    session = getattr(config, "_syrupy", None)
    if session is not None:
        session.ran_item(nodeid, "skipped")


@shim(
    "syrupy", "config._syrupy, SnapshotSession.ran_item, ItemStatus.SKIPPED, SnapshotReport._skipped_items_match_name"
)
def check_record_as_skipped() -> str | None:
    try:
        from syrupy.report import SnapshotReport
        from syrupy.session import ItemStatus, SnapshotSession
    except ImportError as error:
        return f"syrupy no longer has {error.name}"
    if "_syrupy" not in _source_of("syrupy"):
        return "syrupy no longer keeps its session in config._syrupy"
    if not callable(getattr(SnapshotSession, "ran_item", None)):
        return "syrupy's SnapshotSession has no ran_item()"
    if getattr(ItemStatus, "SKIPPED", None) is None or ItemStatus.SKIPPED.value != "skipped":
        return "syrupy's ItemStatus has no SKIPPED = 'skipped'"
    if not callable(getattr(SnapshotReport, "_skipped_items_match_name", None)):
        return "syrupy's SnapshotReport no longer keeps the snapshots of skipped tests"
    return None


def record_as_skipped_problem() -> str | None:
    """Why failed tests' snapshots cannot be protected on the installed syrupy, or None."""
    return next(item.problem() for item in SHIMS if item.name == "record_as_skipped")


def syrupy_option(option: object, dest: str) -> Any:
    """The value of syrupy's command-line option ``dest`` on pytest's ``config.option``, or
    None (syrupy not installed); one of :data:`SYRUPY_OPTIONS`."""
    assert dest in SYRUPY_OPTIONS, dest
    return getattr(option, dest, None)


def ignore_snapshot_files_ending(option: object, extension: str) -> None:
    """Make syrupy leave files ending in ``.extension`` beside the snapshots alone (never
    counted as unused, so never deleted by ``--snapshot-update``)."""
    if hasattr(option, "ignore_file_extensions"):
        option.ignore_file_extensions = [*(option.ignore_file_extensions or []), extension]  # type: ignore[attr-defined]


# syrupy's `dest` names for its options (``--snapshot-update``, ``--snapshot-dirname``, ...).
SYRUPY_OPTIONS = ("update_snapshots", "snapshot_dirname", "ignore_file_extensions")


@shim("syrupy", "the dests update_snapshots, snapshot_dirname, ignore_file_extensions of syrupy's options")
def check_syrupy_option() -> str | None:
    source = _source_of("syrupy")
    missing = [dest for dest in SYRUPY_OPTIONS if f'dest="{dest}"' not in source]
    return f"syrupy's options have no dest {', '.join(missing)}" if missing else None


@shim("syrupy", "config.option.ignore_file_extensions (a list of extensions)")
def check_ignore_snapshot_files_ending() -> str | None:
    return check_syrupy_option()


def _source_of(module: str) -> str:
    """The source text of ``module`` (read, not imported: for names set on other objects)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    return Path(spec.origin).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# pytest: private attributes of pytest's own objects (listed here too, so that one file holds
# every touch of another package's internals)
# ---------------------------------------------------------------------------------------------


def session_tmp_path_factory(config: object) -> TempPathFactory:
    """The session's ``tmp_path_factory``, reachable from a hook.

    pytest offers no public way: its tmpdir plugin keeps the factory on the config (a private
    attribute, which pytest-xdist reads too). The dbt worker is launched at collection, before
    any fixture runs, so this is the one place the plugin reads it.
    """
    return config._tmp_path_factory  # type: ignore[attr-defined,no-any-return]


@shim("pytest", "config._tmp_path_factory (set by _pytest.tmpdir)")
def check_session_tmp_path_factory() -> str | None:
    return None if "_tmp_path_factory" in _source_of("_pytest.tmpdir") else "pytest's tmpdir plugin no longer sets it"


def import_failure_cause(error: BaseException) -> BaseException:
    """The user's exception inside pytest's ``ConftestImportFailure`` (its ``cause``), or
    ``error`` itself."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


@shim("pytest", "_pytest.config.ConftestImportFailure.cause")
def check_import_failure_cause() -> str | None:
    source = _source_of("_pytest.config")
    return (
        None if "class ConftestImportFailure" in source and "self.cause" in source else "no ConftestImportFailure.cause"
    )
