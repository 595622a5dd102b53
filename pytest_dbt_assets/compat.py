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

import contextvars
import functools
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    # The snowflake extra's.
    "fakesnow": ((0, 12, 1), (0, 13)),
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


def missing_attributes(owner: object, *names: str, label: str | None = None) -> str | None:
    """For checks: which of ``names`` ``owner`` (called ``label`` in the message) lacks, or None."""
    missing = [name for name in names if not hasattr(owner, name)]
    shown = label if label is not None else f"{getattr(owner, '__name__', owner)!s}"
    return f"{shown} has no {', '.join(missing)}" if missing else None


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
    return missing_attributes(found, *names, label=f"{module}{'.' + owner if owner else ''}")


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


# ---------------------------------------------------------------------------------------------
# dbt-core and dbt-duckdb: the in-process runner and the worker (pytest_dbt_assets/dbt/)
# ---------------------------------------------------------------------------------------------


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
# fakesnow: the Snowflake emulator (pytest_dbt_assets/warehouse/snowflake.py)
# ---------------------------------------------------------------------------------------------


def fakesnow_instance(folder: Path, nop_regexes: list[str] | None = None) -> Any:
    """fakesnow's emulator on the DuckDB files of ``folder`` (``fakesnow.patch`` builds the
    same, but holds it until the patch ends and patches by name), answering the statements
    ``nop_regexes`` match with success, unrun; close it with :func:`close_fakesnow`."""
    from fakesnow.instance import FakeSnow

    return FakeSnow(
        db_path=folder, create_database_on_connect=True, create_schema_on_connect=True, nop_regexes=nop_regexes
    )


def close_fakesnow(instance: Any) -> None:
    """Release the DuckDB files ``instance`` attached."""
    instance.duck_conn.close()


def is_closed_fakesnow_connection(connection: Any) -> bool:
    return bool(connection._is_closed)


@shim("fakesnow", "fakesnow.instance.FakeSnow(db_path=...), its duck_conn and connect(), a connection's _is_closed")
def check_fakesnow_instance() -> str | None:
    if installed_version("fakesnow") is None:
        return None  # the snowflake extra is not installed: nothing uses it
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            instance = fakesnow_instance(Path(folder))
            connection = instance.connect(database="DB", schema="S")
            connection.close()
            closed = is_closed_fakesnow_connection(connection)
            close_fakesnow(instance)
        except Exception as error:  # noqa: BLE001 - the check reports whatever broke
            return f"{type(error).__name__}: {error}"
        if not closed:
            return "a closed connection does not say so"
        return None if (Path(folder) / "DB.db").exists() else "no DB.db file made in the folder"


def fakesnow_stages_in(folder: Path) -> None:
    """Stage files (``PUT``) of this process go to ``folder``: fakesnow makes a folder for them
    in the system's temp folder when it is imported (``LOCAL_BUCKET_PATH``) and never removes
    it, one a process; that folder, still empty, is removed."""
    import shutil

    from fakesnow.transforms import stage

    made = stage.LOCAL_BUCKET_PATH
    if made == str(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    stage.LOCAL_BUCKET_PATH = str(folder)
    if Path(made).name.startswith("fakesnow_bucket_"):
        shutil.rmtree(made, ignore_errors=True)


@shim("fakesnow", "fakesnow.transforms.stage.LOCAL_BUCKET_PATH, read when a stage is used")
def check_fakesnow_stages_in() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    return lacks("fakesnow.transforms.stage", None, "LOCAL_BUCKET_PATH")


@contextmanager
def fakesnow_statement_rewrite(rewrite: Callable[[Any, Any], Any]) -> Iterator[None]:
    """Inside: each statement fakesnow parses goes through ``rewrite(expression, connection)``
    (sqlglot's expression, fakesnow's connection) before fakesnow's own translation."""
    from unittest import mock

    from fakesnow.cursor import FakeSnowflakeCursor

    explode = FakeSnowflakeCursor._transform_explode

    def rewritten(self: Any, expression: Any) -> Any:
        return explode(self, rewrite(expression, self._conn))

    with mock.patch.object(FakeSnowflakeCursor, "_transform_explode", rewritten):
        yield


@contextmanager
def fakesnow_error_wording(reword: Callable[[str], str]) -> Iterator[None]:
    """Inside: the message of each ``ProgrammingError`` a fakesnow cursor raises goes through
    ``reword`` (same errno and sqlstate; the original error is its cause)."""
    from unittest import mock

    from fakesnow.cursor import FakeSnowflakeCursor
    from snowflake.connector.errors import ProgrammingError

    execute = FakeSnowflakeCursor.execute

    def reworded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except ProgrammingError as error:
            message = reword(error.msg or "")
            if message == error.msg:
                raise
            raise ProgrammingError(msg=message, errno=error.errno, sqlstate=error.sqlstate) from error

    with mock.patch.object(FakeSnowflakeCursor, "execute", reworded):
        yield


@shim("fakesnow", "fakesnow.cursor.FakeSnowflakeCursor.execute raising snowflake's ProgrammingError")
def check_fakesnow_error_wording() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    from fakesnow.instance import FakeSnow

    instance = FakeSnow()  # in memory
    try:
        with fakesnow_error_wording(lambda text: "reworded: " + text):
            instance.connect().cursor().execute("select * from no_such_table")
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        if not str(error).count("reworded: "):
            return f"the error was not reworded: {type(error).__name__}: {error}"
        return None
    finally:
        close_fakesnow(instance)
    return "a query of a missing table raised nothing"


@shim("fakesnow", "fakesnow.cursor.FakeSnowflakeCursor._transform_explode(expression) and its _conn")
def check_fakesnow_statement_rewrite() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    seen: list[Any] = []

    def record(expression: Any, connection: Any) -> Any:
        seen.append(connection)
        return expression

    from fakesnow.instance import FakeSnow

    instance = FakeSnow()  # in memory
    try:
        with fakesnow_statement_rewrite(record):
            connection = instance.connect()
            connection.cursor().execute("select 1")
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    finally:
        close_fakesnow(instance)
    return None if seen and seen[0] is connection else "the rewrite was not called with the statement's connection"


# ---------------------------------------------------------------------------------------------
# dbt-core: reading dbt's command line (isolation, argv)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbtOption:
    """One option of a dbt command, as dbt's click command declares it."""

    flags: tuple[str, ...]  # every spelling: "--target", "-t"; "--no-partial-parse" too
    name: str  # click's parameter name: "target"
    takes_value: bool  # False for on/off flags and counters


@functools.cache
def dbt_commands() -> dict[tuple[str, ...], tuple[DbtOption, ...]]:
    """Every dbt command and group by its path (``()`` is ``dbt`` itself, ``("source",
    "freshness")`` a nested command), with its options, read from dbt's click command tree."""
    import click
    from dbt.cli.main import cli

    found: dict[tuple[str, ...], tuple[DbtOption, ...]] = {}

    def walk(node: click.Command, path: tuple[str, ...]) -> None:
        found[path] = tuple(
            DbtOption(
                flags=(*param.opts, *param.secondary_opts),
                name=param.name or "",
                takes_value=not param.is_flag and not param.count,
            )
            for param in node.params
            if isinstance(param, click.Option)
        )
        if isinstance(node, click.Group):
            for name, child in node.commands.items():
                walk(child, (*path, name))

    walk(cli, ())
    return found


@shim("dbt-core", "dbt.cli.main.cli, dbt's click command tree (Group.commands, Option.opts, name, is_flag)")
def check_dbt_commands() -> str | None:
    try:
        commands = dbt_commands()
    except (ImportError, AttributeError) as error:
        return f"dbt's click commands cannot be read: {error}"
    missing = [" ".join(path) for path in [("run",), ("build",), ("source", "freshness")] if path not in commands]
    if missing:
        return f"dbt has no command {', '.join(missing)}"
    options = {flag: option for option in commands[("run",)] for flag in option.flags}
    expected = {"--profiles-dir": "profiles_dir", "--target": "target", "-t": "target", "--vars": "vars"}
    wrong = [flag for flag, name in expected.items() if flag not in options or options[flag].name != name]
    if wrong or not options["--target"].takes_value:
        return f"dbt run's options are not read as expected: {', '.join(wrong) or '--target takes no value'}"
    return None


# ---------------------------------------------------------------------------------------------
# dagster-dbt and Dagster: materializing (materialize, selection, failures, relocate)
# ---------------------------------------------------------------------------------------------


def dbt_assets_manifest(assets_def: Any) -> tuple[Mapping[str, Any], Any, Any]:
    """The manifest (a dict), translator and ``DbtProject`` (or None) of one ``@dbt_assets``."""
    from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

    return get_manifest_and_translator_from_dbt_assets([assets_def])


@shim("dagster-dbt", "dagster_dbt.asset_utils.get_manifest_and_translator_from_dbt_assets")
def check_dbt_assets_manifest() -> str | None:
    from dagster_dbt import asset_utils

    return missing_attributes(asset_utils, "get_manifest_and_translator_from_dbt_assets")


def map_dbt_projects(defs: Any, move: Callable[[Any], Any]) -> Any:
    """``defs`` with the ``DbtProject`` each asset spec carries (``@dbt_assets(project=...)``)
    replaced by ``move(project)``; specs without one are left as they are."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY

    def moved_spec(spec: Any) -> Any:
        dbt_project = spec.metadata.get(DAGSTER_DBT_PROJECT_METADATA_KEY)
        if dbt_project is None:
            return spec
        return spec.replace_attributes(metadata={**spec.metadata, DAGSTER_DBT_PROJECT_METADATA_KEY: move(dbt_project)})

    return defs.permissive_map_resolved_asset_specs(moved_spec, None)


@shim(
    "dagster-dbt",
    "dagster_dbt.asset_utils.DAGSTER_DBT_PROJECT_METADATA_KEY, Definitions.permissive_map_resolved_asset_specs",
)
def check_map_dbt_projects() -> str | None:
    from dagster import Definitions
    from dagster_dbt import asset_utils

    return missing_attributes(asset_utils, "DAGSTER_DBT_PROJECT_METADATA_KEY") or missing_attributes(
        Definitions, "permissive_map_resolved_asset_specs"
    )


# DbtProject's fields that say where dbt runs and what it reads, and their values in the
# temporary project (relocate.py); every other field is kept.
_DBT_PROJECT_LOCATION_FIELDS = (
    "project_dir",
    "profiles_dir",
    "profile",
    "target",
    "target_path",
    "manifest_path",
    "packaged_project_dir",
    "state_path",
)


def moved_dbt_project(
    dbt_project: Any, *, project_dir: Path, profiles_dir: Path, profile: str, target: str, manifest_path: Path
) -> Any:
    """``dbt_project`` (a ``DbtProject``) pointing at another project folder and profile, with
    ``target/`` inside it and no packaged copy or state folder of its own."""
    from dagster_shared.record import replace

    return replace(
        dbt_project,
        project_dir=project_dir,
        profiles_dir=profiles_dir,
        profile=profile,
        target=target,
        target_path=Path("target"),
        manifest_path=manifest_path,
        packaged_project_dir=None,
        state_path=None,
    )


@shim("dagster-dbt", "dagster_shared.record.replace on DbtProject, and its location fields")
def check_moved_dbt_project() -> str | None:
    from dagster_dbt import DbtProject
    from dagster_shared.record import get_record_annotations

    fields = set(get_record_annotations(DbtProject))
    missing = [name for name in _DBT_PROJECT_LOCATION_FIELDS if name not in fields]
    if missing:
        return f"DbtProject has no field {', '.join(missing)}"
    if any(name not in _DBT_PROJECT_LOCATION_FIELDS for name in fields if "path" in name or "dir" in name):
        extra = sorted(
            name for name in fields if ("path" in name or "dir" in name) and name not in _DBT_PROJECT_LOCATION_FIELDS
        )
        return f"DbtProject has location fields relocate does not move: {', '.join(extra)}"
    return None


def with_resources(defs: Any, resources: Mapping[str, Any]) -> Any:
    """``defs`` with its resources replaced (not merged, as ``Definitions.merge`` would)."""
    from dagster_shared.record import replace

    return replace(defs, resources=dict(resources))


@shim("dagster", "dagster_shared.record.replace on Definitions, its resources field")
def check_with_resources() -> str | None:
    from dagster import Definitions
    from dagster_shared.record import get_record_annotations

    return None if "resources" in get_record_annotations(Definitions) else "Definitions has no field resources"


def dbt_python_version() -> str | None:
    """The version of the dbt-core importable in this interpreter, as dagster-dbt reads it."""
    from dagster_dbt.compat import DBT_PYTHON_VERSION

    return None if DBT_PYTHON_VERSION is None else str(DBT_PYTHON_VERSION)


@shim("dagster-dbt", "dagster_dbt.compat.DBT_PYTHON_VERSION")
def check_dbt_python_version() -> str | None:
    from dagster_dbt import compat as dagster_dbt_compat

    return missing_attributes(dagster_dbt_compat, "DBT_PYTHON_VERSION")


def dbt_cli_resource_base() -> type:
    """A ``DbtCliResource`` subclass that skips or defers slow steps dagster-dbt takes per call.

    ``dbt_assets_version`` (when the dbt that runs is this interpreter's) replaces the
    ``dbt --version`` subprocess dagster-dbt runs for every resource instance. The dbt-core
    adapter dagster-dbt builds on each ``cli`` call (importing dbt and parsing every macro,
    seconds, before dbt even starts) is built once per project, profile and vars, keyed by
    :meth:`dbt_assets_adapter_key`, and only when something reads the invocation's
    ``adapter`` (``fetch_row_counts()``, ``fetch_column_metadata()``): with the environment and
    folder dagster-dbt would have built it in, while dbt already runs.
    """
    return _dbt_cli_resource_base()


# The adapters dagster-dbt asked for during the current ``cli`` call, built when first read.
_ADAPTER_WANTED: contextvars.ContextVar[list[Callable[[], Any]] | None] = contextvars.ContextVar(
    "dbt_assets_adapter_wanted", default=None
)
_ADAPTER_LOCK = threading.RLock()


@functools.cache
def _dbt_cli_resource_base() -> type:
    from dagster_dbt import DbtCliResource

    adapters: dict[Any, Any] = {}

    class CachingDbtCliResource(DbtCliResource):
        dbt_assets_version: str = ""

        def dbt_assets_adapter_key(self, args: Sequence[str]) -> Any:
            return (self.project_dir, self.profiles_dir, self.profile, self.target, tuple(args))

        @functools.cached_property
        def _cli_version(self) -> Any:
            if self.dbt_assets_version:
                from packaging import version as packaging_version

                return packaging_version.parse(self.dbt_assets_version)
            return super()._cli_version

        def cli(self, args: Sequence[str], **kwargs: Any) -> Any:
            wanted: list[Callable[[], Any]] = []
            token = _ADAPTER_WANTED.set(wanted)
            try:
                invocation = super().cli(args, **kwargs)
            finally:
                _ADAPTER_WANTED.reset(token)
            if wanted:
                _build_adapter_on_first_read(invocation, wanted[-1])
            return invocation

        def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
            key = self.dbt_assets_adapter_key(args)
            if key in adapters:
                return adapters[key]
            initialize = super()._initialize_dbt_core_adapter
            # What dagster-dbt builds it from besides the resource: the folder and environment.
            cwd, environ = os.getcwd(), dict(os.environ)

            def build() -> Any:
                with _ADAPTER_LOCK:
                    if key not in adapters:
                        with _process_state(cwd, environ):
                            adapters[key] = initialize(args)
                    return adapters[key]

            wanted = _ADAPTER_WANTED.get()
            if wanted is None:  # called outside cli(): build it now, as dagster-dbt does
                return build()
            wanted.append(build)
            return None

    return CachingDbtCliResource


@contextmanager
def _process_state(cwd: str, environ: Mapping[str, str]) -> Iterator[None]:
    """Run inside ``cwd`` with exactly ``environ``; both restored afterwards."""
    saved_cwd, saved_environ = os.getcwd(), dict(os.environ)
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        os.chdir(saved_cwd)


def _build_adapter_on_first_read(invocation: Any, build: Callable[[], Any]) -> None:
    """Make ``invocation.adapter`` call ``build`` the first time it is read (None if it fails,
    with a warning, as dagster-dbt treats an adapter it cannot build)."""
    cls: type = type(invocation)
    invocation.__dict__["_dbt_assets_build_adapter"] = build
    invocation.__class__ = _lazy_adapter_class(cls)


@functools.cache
def _lazy_adapter_class(cls: type) -> type:
    def read(self: Any) -> Any:
        with _ADAPTER_LOCK:
            build = self.__dict__.pop("_dbt_assets_build_adapter", None)
            if build is not None:
                try:
                    self.__dict__["adapter"] = build()
                except Exception:  # noqa: BLE001 - dagster-dbt goes on without an adapter too
                    from dagster import get_dagster_logger

                    get_dagster_logger().warning(
                        "pytest-dbt-assets: the dbt adapter dagster-dbt uses for row counts and column "
                        "metadata could not be created; they are left out.",
                        exc_info=True,
                    )
                    self.__dict__["adapter"] = None
            return self.__dict__.get("adapter")

    def write(self: Any, value: Any) -> None:
        with _ADAPTER_LOCK:
            self.__dict__.pop("_dbt_assets_build_adapter", None)
            self.__dict__["adapter"] = value

    return type(cls.__name__, (cls,), {"adapter": property(read, write), "__module__": cls.__module__})


@shim(
    "dagster-dbt",
    "DbtCliResource._cli_version (cached property), DbtCliResource._initialize_dbt_core_adapter(args) called by "
    "cli() alone, DbtCliInvocation.adapter (a dataclass field read only after cli() returns)",
)
def check_dbt_cli_resource_base() -> str | None:
    import dataclasses
    import inspect

    from dagster_dbt import DbtCliInvocation, DbtCliResource

    missing = missing_attributes(DbtCliResource, "_cli_version", "_initialize_dbt_core_adapter")
    if missing:
        return missing
    if not isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), functools.cached_property):
        return "DbtCliResource._cli_version is no longer a cached property"
    if list(inspect.signature(DbtCliResource._initialize_dbt_core_adapter).parameters) != ["self", "args"]:
        return "DbtCliResource._initialize_dbt_core_adapter no longer takes (self, args)"
    if "_initialize_dbt_core_adapter" not in inspect.getsource(DbtCliResource.cli):
        return "DbtCliResource.cli no longer builds the adapter itself"
    if not dataclasses.is_dataclass(DbtCliInvocation) or "adapter" not in {
        f.name for f in dataclasses.fields(DbtCliInvocation)
    }:
        return "DbtCliInvocation has no adapter field"
    if hasattr(DbtCliInvocation, "__slots__") or DbtCliInvocation.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return "DbtCliInvocation is frozen or slotted: its adapter cannot be filled in later"
    return None


def invocation_process(invocation: Any) -> subprocess.Popen[bytes]:
    """The dbt process of a ``DbtCliInvocation``."""
    return invocation.process  # type: ignore[no-any-return]


@shim("dagster-dbt", "DbtCliInvocation.process (the dbt subprocess)")
def check_invocation_process() -> str | None:
    import dataclasses

    from dagster_dbt import DbtCliInvocation

    if dataclasses.is_dataclass(DbtCliInvocation) and "process" in {
        f.name for f in dataclasses.fields(DbtCliInvocation)
    }:
        return None
    return "DbtCliInvocation has no process field"


# dagster-dbt's error when a dbt command fails; a step failure carries only its class name.
DBT_CLI_ERROR_CLASS = "DagsterDbtCliRuntimeError"


def is_dbt_cli_error(class_name: str) -> bool:
    """Whether a failed step's error (Dagster keeps only its class name) is dbt's command failing."""
    return class_name == DBT_CLI_ERROR_CLASS


@shim("dagster-dbt", "dagster_dbt.DagsterDbtCliRuntimeError, matched by class name in step failures")
def check_is_dbt_cli_error() -> str | None:
    import dagster_dbt

    error = getattr(dagster_dbt, DBT_CLI_ERROR_CLASS, None)
    return (
        None
        if isinstance(error, type) and error.__name__ == DBT_CLI_ERROR_CLASS
        else f"dagster_dbt has no {DBT_CLI_ERROR_CLASS}"
    )


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


def text_write_mode() -> Any:
    """The ``_write_mode`` value that makes a ``SingleFileSnapshotExtension`` write text files
    (syrupy's README shows the private class attribute as the way to do it)."""
    from syrupy.extensions.single_file import WriteMode

    return WriteMode.TEXT


@shim("syrupy", "SingleFileSnapshotExtension._write_mode, WriteMode.TEXT")
def check_text_write_mode() -> str | None:
    try:
        from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
    except ImportError as error:
        return f"syrupy.extensions.single_file has no {error.name}"
    return missing_attributes(SingleFileSnapshotExtension, "_write_mode") or missing_attributes(WriteMode, "TEXT")


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
    attribute, which pytest-xdist reads too). The dbt worker's folder is made at collection, before
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
