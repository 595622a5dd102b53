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

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def lacks(module: str, owner: str | None, *names: str) -> str | None:
    """For checks: what ``module`` (or its attribute ``owner``) lacks of ``names``, or None."""
    import importlib

    try:
        found: object = importlib.import_module(module)
    except ImportError as error:
        return f"cannot import {module} ({error})"
    if owner is not None:
        if not hasattr(found, owner):
            return f"{module} has no {owner}"
        found = getattr(found, owner)
    missing = [name for name in names if not hasattr(found, name)]
    return f"{module}{'.' + owner if owner else ''} has no {', '.join(missing)}" if missing else None


def _field_names(module: str, owner: str) -> set[str] | str:
    """The dataclass fields of ``module.owner``, or what is wrong."""
    import dataclasses
    import importlib

    try:
        found = getattr(importlib.import_module(module), owner)
    except (ImportError, AttributeError) as error:
        return f"cannot find {module}.{owner} ({error})"
    if not dataclasses.is_dataclass(found):
        return f"{module}.{owner} is no longer a dataclass"
    return {item.name for item in dataclasses.fields(found)}


def close_duckdb_handles() -> None:
    """Close every DuckDB handle dbt-duckdb holds in this process (it keeps them open across
    commands, in a class attribute): reset dbt's adapters, close dbt-duckdb's environment."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import reset_adapters
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    reset_adapters()
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager.close_all_connections()


@shim(
    "dbt-duckdb",
    "dbt.adapters.factory.reset_adapters, DuckDBConnectionManager._ENV and .close_all_connections, Environment.close",
)
def check_close_duckdb_handles() -> str | None:
    return (
        lacks("dbt.adapters.factory", None, "reset_adapters")
        or lacks("dbt.adapters.duckdb.connections", "DuckDBConnectionManager", "_ENV", "close_all_connections")
        or lacks("dbt.adapters.duckdb.environments", "Environment", "close")
    )


@contextmanager
def partial_parse_ignoring_profile_hash() -> Iterator[None]:
    """Let dbt accept a partial-parse file made with another DuckDB path.

    dbt rejects the file when the profile's connection details differ; the plugin's profile
    differs between sessions only by its temporary folder, which the worker's cache key leaves
    out and checks everything else. Without the hook (another dbt), dbt simply parses in full.
    """
    try:
        from dbt.parser.manifest import ManifestLoader

        original = ManifestLoader.is_partial_parsable
    except (ImportError, AttributeError):
        yield
        return

    def is_partial_parsable(loader: Any, manifest: Any) -> Any:
        manifest.state_check.profile_hash = loader.manifest.state_check.profile_hash
        return original(loader, manifest)

    ManifestLoader.is_partial_parsable = is_partial_parsable  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ManifestLoader.is_partial_parsable = original  # type: ignore[method-assign]


@shim(
    "dbt-core",
    "dbt.parser.manifest.ManifestLoader.is_partial_parsable(self, manifest), .manifest, "
    "Manifest.state_check.profile_hash",
)
def check_partial_parse_ignoring_profile_hash() -> str | None:
    import inspect

    if problem := lacks("dbt.parser.manifest", "ManifestLoader", "is_partial_parsable"):
        return problem
    from dbt.parser.manifest import ManifestLoader

    parameters = list(inspect.signature(ManifestLoader.is_partial_parsable).parameters)
    if parameters != ["self", "manifest"]:
        return f"ManifestLoader.is_partial_parsable takes ({', '.join(parameters)}), not (self, manifest)"
    if "self.manifest" not in inspect.getsource(ManifestLoader.__init__):
        return "ManifestLoader.__init__ no longer sets self.manifest"
    for module, owner, field in (
        ("dbt.contracts.graph.manifest", "Manifest", "state_check"),
        ("dbt.contracts.graph.manifest", "ManifestStateCheck", "profile_hash"),
    ):
        names = _field_names(module, owner)
        if isinstance(names, str):
            return names
        if field not in names:
            return f"{module}.{owner} has no field {field}"
    return None


def move_node_roots(manifest: Any, made_in: str, project_dir: str) -> None:
    """Point the nodes of a manifest parsed in ``made_in`` at ``project_dir``: seeds keep the
    absolute folder they were parsed in (``root_path``; dbt reads the CSV from there)."""
    for node in manifest.nodes.values():
        root = getattr(node, "root_path", None)
        if isinstance(root, str) and (root == made_in or root.startswith(made_in + os.sep)):
            node.root_path = project_dir + root[len(made_in) :]


@shim("dbt-core", "SeedNode.root_path")
def check_move_node_roots() -> str | None:
    names = _field_names("dbt.contracts.graph.nodes", "SeedNode")
    if isinstance(names, str):
        return names
    return None if "root_path" in names else "dbt.contracts.graph.nodes.SeedNode has no field root_path"


def write_manifest(manifest: Any, target_path: str) -> None:
    """Write ``manifest.json`` into ``target_path``, as dbt does after parsing."""
    from dbt.parser.manifest import write_manifest as write

    write(manifest, target_path)


@shim("dbt-core", "dbt.parser.manifest.write_manifest(manifest, target_path)")
def check_write_manifest() -> str | None:
    import inspect

    if problem := lacks("dbt.parser.manifest", None, "write_manifest"):
        return problem
    from dbt.parser.manifest import write_manifest as write

    parameters = list(inspect.signature(write).parameters)
    return None if parameters[:2] == ["manifest", "target_path"] else f"write_manifest takes ({', '.join(parameters)})"


def partial_parse_file_name() -> str:
    """The name of dbt's partial-parse file in the target folder."""
    from dbt.constants import PARTIAL_PARSE_FILE_NAME

    return str(PARTIAL_PARSE_FILE_NAME)


@shim("dbt-core", "dbt.constants.PARTIAL_PARSE_FILE_NAME")
def check_partial_parse_file_name() -> str | None:
    return lacks("dbt.constants", None, "PARTIAL_PARSE_FILE_NAME")


def refused_partial_parse(event: Any) -> str | None:
    """dbt's reason when ``event`` (a dbtRunner callback's) says it cannot use the partial-parse
    file, else None."""
    return str(event.info.msg) if event.info.name == "UnableToPartialParse" else None


@shim("dbt-core", "the event dbt.events.types.UnableToPartialParse")
def check_refused_partial_parse() -> str | None:
    return lacks("dbt.events.types", None, "UnableToPartialParse")


def compile_macro_template(macro: Any) -> None:
    """Compile ``macro``'s Jinja template into dbt's process-wide template cache, as dbt does
    the first time a command calls it."""
    from dbt_common.clients.jinja import template_cache

    template_cache.get_node_template(macro)


# dbt-common is pinned by dbt-core: read against the dbt-core versions that pin it.
@shim("dbt-core", "dbt_common.clients.jinja.template_cache.get_node_template")
def check_compile_macro_template() -> str | None:
    return lacks("dbt_common.clients.jinja", "template_cache", "get_node_template")


# Everything a `dbt build` on DuckDB imports, loaded once by the worker before any fork.
_WARM_MODULES = ("agate", "duckdb", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl", "dbt.cli.main", "dbt.task.build")


def warm_dbt_imports() -> None:
    """Import what a ``dbt build`` on DuckDB imports, so that forked children share it."""
    import importlib

    for module in _WARM_MODULES:
        importlib.import_module(module)


@shim("dbt-core", "the modules " + ", ".join(_WARM_MODULES))
def check_warm_dbt_imports() -> str | None:
    import importlib.util

    missing = []
    for module in _WARM_MODULES:
        try:
            found = importlib.util.find_spec(module)
        except ImportError:
            found = None
        if found is None:
            missing.append(module)
    return f"cannot find {', '.join(missing)}" if missing else None


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
