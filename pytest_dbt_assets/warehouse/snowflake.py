"""Snowflake's backend: the user's own dbt-snowflake, its connection served by fakesnow (a
Snowflake emulator on DuckDB) on one DuckDB file per Snowflake database, ``<NAME>.db`` in the
project's ``warehouse/`` folder.

The generated profile keeps the user's database and schema (their SQL and Python code name
them) with made-up credentials. Every process that runs dbt or the user's code routes
``snowflake.connector.connect`` and ``write_pandas`` to the emulator (:func:`emulating`):
dbt's processes find the folder in :data:`FOLDER_ENV`, pytest's own process enters
:meth:`SnowflakeBackend.serving` around each materialization.

DuckDB lets one process at a time write a file, so the emulator of a process is opened by its
first connection and closed with its last: the user's Python asset lets go of the files
before dbt's process opens them.

fakesnow, sqlglot, the Snowflake connector and dbt are imported inside the functions that use
them: they are the snowflake extra's (:func:`validate_installed` says in words when it is
missing, which an import here would not), and they cost about a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pytest_dbt_assets.cache import package_version
from pytest_dbt_assets.compat import fakesnow as fakesnow_compat
from pytest_dbt_assets.errors import WarehouseError
from pytest_dbt_assets.warehouse.base import Backend, UserTarget, imported_classes, resolved_config
from pytest_dbt_assets.warehouse.guards import refusing_snowflake
from pytest_dbt_assets.warehouse.snowflake_sql import drop_temporary, emulator_hint, rewrite, snowflake_wording

FOLDER_ENV = "PYTEST_DBT_ASSETS_SNOWFLAKE_FOLDER"
FOLDER_NAME = "warehouse"
FILE_SUFFIX = ".db"  # fakesnow's name for a database's file
STAGES_FOLDER = "stages"  # beside FOLDER_NAME: files PUT to the emulator's stages
DEFAULT_DATABASE = "DBT_ASSETS"
DEFAULT_SCHEMA = "PUBLIC"
FAKE_CREDENTIALS = {"account": "fakesnow", "user": "pytest_dbt_assets", "password": "not-a-secret"}
# Each statement runs in a transaction of its own: fakesnow records what it makes in a catalog
# of its own, and a DuckDB transaction may write to one database only, so dbt-snowflake's
# `begin; merge ...; commit` (incremental models, snapshots) cannot run as one.
TRANSACTION_STATEMENTS = [r"(\s|--[^\n]*\n|/\*[\s\S]*?\*/)*(begin|start\s+transaction|commit|rollback)\b"]
_SEMI_STRUCTURED = {"VARIANT", "OBJECT", "ARRAY"}
INSTALL_HINT = "pip install 'pytest-dbt-assets[snowflake]' (fakesnow and dbt-snowflake)"


class SnowflakeBackend(Backend):
    name = "snowflake"

    def __init__(self, target: UserTarget) -> None:
        super().__init__(target)
        self.database = (target.database or DEFAULT_DATABASE).upper()
        self.schema = (target.schema or DEFAULT_SCHEMA).upper()
        self.search_path = f"{self.database}.{self.schema}"
        validate_installed(target)

    def main_file(self, workdir: Path) -> Path:
        return workdir / FOLDER_NAME / f"{self.database}{FILE_SUFFIX}"

    def database_file(self, main_file: Path, name: str) -> Path:
        return main_file.parent / f"{name.upper()}{FILE_SUFFIX}"

    def profile_output(self, main_file: Path, attached: Mapping[str, Path]) -> dict[str, Any]:
        main_file.parent.mkdir(parents=True, exist_ok=True)
        return {
            "type": "snowflake",
            **FAKE_CREDENTIALS,
            "database": self.database,
            "schema": self.schema,
            "threads": 4,
            "client_session_keep_alive": False,
        }

    def further_databases(self, manifest: Mapping[str, Any]) -> set[str]:
        # Snowflake models may build in other databases (`database:` config) and sources pin
        # raw ones: each must exist before dbt's `create schema if not exists` reaches it.
        found = {
            str(node["database"])
            for section in ("nodes", "sources")
            for node in (manifest.get(section) or {}).values()
            if node.get("database")
        }
        return {name.upper() for name in found} - {self.database}

    def dbt_environment(self, main_file: Path) -> dict[str, str]:
        return {FOLDER_ENV: str(main_file.parent)}

    def dbt_executable(self, workdir: Path) -> str | None:
        path = workdir / "bin" / "dbt"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_text(
                f"#!{sys.executable}\n"
                '"""dbt on the Snowflake emulator (pytest-dbt-assets, subprocess runner)."""\n'
                "import sys\n\n"
                "from pytest_dbt_assets.warehouse.snowflake import dbt_main\n\n"
                "sys.exit(dbt_main(sys.argv[1:]))\n",
                encoding="utf-8",
            )
            path.chmod(0o755)
        return str(path)

    @contextmanager
    def running_dbt(self, main_file: Path) -> Iterator[None]:
        with emulating(main_file.parent):
            yield

    def create_databases(self, main_file: Path, attached: Mapping[str, Path], schemas: set[tuple[str, str]]) -> None:
        wanted = {(self.database, self.schema)} | {(database or self.database, schema) for database, schema in schemas}
        names = {main_file.stem, *attached, *(database for database, _ in wanted)}
        if all(self.database_file(main_file, name).exists() for name in names):
            return  # a later call of the same test: made by the first
        # Through the emulator, so that each file holds the catalog views and macros it adds;
        # the first connection keeps one emulator open for the others.
        with emulating(main_file.parent) as emulator:
            connection = emulator.connect(database=self.database, schema=self.schema)
            try:
                for name in sorted(names - {self.database}):
                    emulator.connect(database=name).close()
                for database, schema in sorted(wanted):
                    connection.cursor().execute(f"create schema if not exists {database}.{schema}")
            finally:
                connection.close()

    def reset(self, main_file: Path, attached: Mapping[str, Path]) -> None:
        # Code under test may have made more databases (CREATE DATABASE, a connection's
        # database): every file of the folder goes.
        super().reset(main_file, attached)
        for path in main_file.parent.glob(f"*{FILE_SUFFIX}*"):
            path.unlink(missing_ok=True)

    @contextmanager
    def serving(self, main_file: Path, *, allowed: Path) -> Iterator[None]:
        with emulating(main_file.parent), refusing_snowflake(self.name):
            yield

    def to_duckdb_sql(self, sql: str) -> str:
        import sqlglot

        return ";\n".join(sqlglot.transpile(sql, read="snowflake", write="duckdb"))

    def identifier(self, name: str) -> str:
        return name.upper()

    def column_type(self, declared: str) -> str:
        from sqlglot import exp

        try:
            kind = exp.DataType.build(declared, dialect="snowflake")
        except Exception:  # noqa: BLE001 - DuckDB then says what it cannot read, naming the source
            return declared
        # Semi-structured values are JSON on the emulator, as fakesnow stores them.
        return "JSON" if kind.this.name in _SEMI_STRUCTURED else kind.sql(dialect="duckdb")

    def failure_hint(self, message: str) -> str | None:
        return emulator_hint(message)

    def fingerprint_text(self) -> str:
        return (
            f"warehouse=snowflake dbt-snowflake={package_version('dbt-snowflake')} "
            f"database={self.database} schema={self.schema}"
        )

    def test_resources(self, resources: Mapping[str, Any], main_file: Path) -> dict[str, Any]:
        # dagster-snowflake's resources and I/O managers get made-up credentials and, where
        # their own cannot be read, the profile's database and schema.
        return {key: self._on_emulator(value) for key, value in resources.items()}

    def _on_emulator(self, resource: Any) -> Any:
        classes = imported_classes("dagster_snowflake", "SnowflakeResource", "SnowflakeIOManager")
        if not classes or not isinstance(resource, classes):
            return resource
        values, unset = resolved_config(resource)
        values.update(FAKE_CREDENTIALS)
        for name in ("private_key", "private_key_path", "private_key_password", "authenticator", "host"):
            values.pop(name, None)
        # Where the team's own database or schema comes from an unset variable, the profile's.
        profile = {"database": self.database, "schema": self.schema}
        values.update({name: value for name, value in profile.items() if name in unset})
        return type(resource)(**values)


def validate_installed(target: UserTarget) -> None:
    """Raise :class:`WarehouseError` when fakesnow or dbt-snowflake is missing."""
    missing = [
        name
        for name, module in (("fakesnow", "fakesnow"), ("dbt-snowflake", "dbt.adapters.snowflake"))
        if _absent(module, importlib.util.find_spec)
    ]
    if missing:
        raise WarehouseError(
            f"Your dbt profile's target is Snowflake ({target.origin}): the plugin runs it on the Snowflake "
            f"emulator fakesnow, with your own dbt-snowflake adapter, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install them: {INSTALL_HINT}."
        )


def _absent(module: str, find_spec: Any) -> bool:
    try:
        return find_spec(module) is None
    except ModuleNotFoundError:
        return True


class Emulator:
    """One fakesnow instance for this process, opened by the first connection to its folder and
    closed (its DuckDB files released) when the last one closes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._instance: Any = None
        self._open = 0

    def connect(self, database: str | None = None, schema: str | None = None, **kwargs: Any) -> Any:
        with self._lock:
            if self._instance is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._instance = fakesnow_compat.fakesnow_instance(self.folder, TRANSACTION_STATEMENTS)
                # Every database the project names is attached up front: Snowflake SQL reads
                # across databases (RAW.LANDING.EVENTS) on one connection.
                for path in sorted(self.folder.glob(f"*{FILE_SUFFIX}")):
                    if path.stem.upper() != (database or "").upper():
                        self._instance.connect(database=path.stem).close()
            connection = self._instance.connect(database=database, schema=schema, **_connect_options(kwargs))
            self._open += 1
        close = connection.close

        def closing(*args: Any, **kwargs: Any) -> Any:
            if fakesnow_compat.is_closed_fakesnow_connection(connection):
                return close(*args, **kwargs)
            try:
                drop_temporary(connection)  # Snowflake drops them with the session
            finally:
                try:
                    close(*args, **kwargs)
                finally:
                    self._release()

        connection.close = closing
        return connection

    def _release(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open <= 0 and self._instance is not None:
                fakesnow_compat.close_fakesnow(self._instance)
                self._instance = None
                self._open = 0

    def close(self) -> None:
        with self._lock:
            if self._instance is not None:
                fakesnow_compat.close_fakesnow(self._instance)
            self._instance, self._open = None, 0


def _connect_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What fakesnow's connection takes of ``snowflake.connector.connect``'s arguments
    (``autocommit`` left out: see :data:`TRANSACTION_STATEMENTS`)."""
    return {name: kwargs[name] for name in ("paramstyle",) if name in kwargs}


@contextmanager
def emulating(folder: Path) -> Iterator[Emulator]:
    """Inside: ``snowflake.connector.connect`` and ``write_pandas`` of this process reach the
    emulator on the DuckDB files in ``folder``, whatever account or host they name."""
    import fakesnow.fakes
    import snowflake.connector
    import snowflake.connector.pandas_tools  # fakesnow's write_pandas replaces its own

    emulator = Emulator(folder)
    fakesnow_compat.fakesnow_stages_in(folder.parent / STAGES_FOLDER)
    _load_sql_dialects()

    def connect(*args: Any, **kwargs: Any) -> Any:
        return emulator.connect(**kwargs)

    with ExitStack() as stack:
        stack.enter_context(
            rebinding(
                {
                    "connect": (snowflake.connector.connect, connect),
                    "write_pandas": (snowflake.connector.pandas_tools.write_pandas, fakesnow.fakes.write_pandas),
                }
            )
        )
        stack.enter_context(fakesnow_compat.fakesnow_statement_rewrite(rewrite))
        stack.enter_context(fakesnow_compat.fakesnow_error_wording(snowflake_wording))
        stack.enter_context(_quiet_emulator())
        stack.callback(emulator.close)
        yield emulator


@contextmanager
def rebinding(functions: Mapping[str, tuple[Any, Any]]) -> Iterator[None]:
    """Inside: every loaded module's global ``name`` that is the function ``real`` (its own
    module's, and the copies ``from snowflake.connector import connect`` made, in the user's
    modules and dagster-snowflake's) is ``replacement`` (``functions``: name -> (real,
    replacement)); each is put back after."""
    swapped: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for name, (real, replacement) in functions.items():
                if namespace.get(name) is real:
                    namespace[name] = replacement
                    swapped.append((namespace, name, real))
        yield
    finally:
        for namespace, name, real in swapped:
            namespace[name] = real


@contextmanager
def _quiet_emulator() -> Iterator[None]:
    """The emulator's own warnings and sqlglot's log lines are not the user's to act on."""
    sqlglot_logger = logging.getLogger("sqlglot")
    level = sqlglot_logger.level
    sqlglot_logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"fakesnow(\.|$)")
        warnings.filterwarnings("ignore", module=r"sqlglot(\.|$)")
        try:
            yield
        finally:
            sqlglot_logger.setLevel(level)


@contextmanager
def emulating_for_dbt(environ: Mapping[str, str]) -> Iterator[None]:
    """In a process that runs dbt (the worker's child, the subprocess runner's dbt, an
    in-process command): the emulator, when :data:`FOLDER_ENV` names its folder."""
    folder = environ.get(FOLDER_ENV)
    if not folder:
        yield
        return
    with emulating(Path(folder)):
        yield


def _load_sql_dialects() -> None:
    """Load sqlglot's Snowflake and DuckDB dialects, which fakesnow reads and writes, before any
    thread parses. sqlglot loads a dialect on its first use and registers the class before it
    gives the class its parser: a thread parsing meanwhile gets sqlglot's generic parser. dbt
    lists the schemas of several databases at once, in threads, as its first statements, and
    ``SHOW TERSE SCHEMAS`` so parsed reached DuckDB untranslated ("Parser Error")."""
    from sqlglot.dialects.dialect import Dialect

    for name in ("snowflake", "duckdb"):
        Dialect.get_or_raise(name)


def warm_emulator_imports() -> None:
    """Import what a dbt command on the emulator imports (about a second), for forked children."""
    import fakesnow.fakes
    import fakesnow.instance  # noqa: F401
    import snowflake.connector.pandas_tools  # noqa: F401

    _load_sql_dialects()


def dbt_main(argv: list[str]) -> int:
    """``dbt <argv>`` on the emulator: the executable dagster-dbt starts with the subprocess runner."""
    from dbt.cli.main import cli

    with emulating_for_dbt(os.environ):
        try:
            cli.main(args=argv, prog_name="dbt", standalone_mode=True)
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0
