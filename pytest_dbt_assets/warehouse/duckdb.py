"""DuckDB's backend: dbt-duckdb on a file under the project's workdir, further databases
(those sources pin) attached from ``attached/<name>.duckdb``; in a materialization, every
``duckdb.connect()`` of this process reaches the test database when it names the file of the
user's profile (or an in-memory database, or a file under basetemp), and is refused anywhere
else (another file, MotherDuck)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_dbt_assets.errors import WarehouseConnectionRefused
from pytest_dbt_assets.warehouse.base import OVERRIDE_HINT, Backend, imported_classes, resolved_config
from pytest_dbt_assets.warehouse.guards import refusing_snowflake

DUCKDB_FILE_NAME = "dbt_assets.duckdb"


class DuckDBBackend(Backend):
    name = "duckdb"

    def main_file(self, workdir: Path) -> Path:
        return workdir / DUCKDB_FILE_NAME

    def database_file(self, main_file: Path, name: str) -> Path:
        return main_file.parent / "attached" / f"{name}.duckdb"

    def profile_output(self, main_file: Path, attached: Mapping[str, Path]) -> dict[str, Any]:
        # keep_open: dbt-duckdb's own default since 1.9.2 (set here for older versions): one
        # handle for the whole command. Materializations run dbt in a process of its own, and
        # dbt.runner.run_dbt releases the file after each in-process command.
        output: dict[str, Any] = {"type": "duckdb", "path": str(main_file), "threads": 4, "keep_open": True}
        if attached:
            output["attach"] = [{"path": str(path), "alias": name} for name, path in sorted(attached.items())]
        return output

    def further_databases(self, manifest: Mapping[str, Any]) -> set[str]:
        # The manifest was parsed with the generated profile: a source without `database:`
        # resolves to the test database; any other name is one the user's YAML pins.
        return {
            str(source["database"]) for source in (manifest.get("sources") or {}).values() if source.get("database")
        }

    def test_resources(self, resources: Mapping[str, Any], main_file: Path) -> dict[str, Any]:
        # dagster-duckdb's resource and I/O managers whose database cannot be read (an unset
        # EnvVar) take the test database; a readable one is routed when it connects.
        return {key: self._on_test_database(value, main_file) for key, value in resources.items()}

    @staticmethod
    def _on_test_database(resource: Any, main_file: Path) -> Any:
        classes = imported_classes("dagster_duckdb", "DuckDBResource", "DuckDBIOManager")
        if not classes or not isinstance(resource, classes):
            return resource
        values, unset = resolved_config(resource)
        return type(resource)(**{**values, "database": str(main_file)}) if "database" in unset else resource

    @contextmanager
    def serving(self, main_file: Path, *, allowed: Path) -> Iterator[None]:
        with routing_duckdb(main_file, self.target.path, allowed), refusing_snowflake(self.name):
            yield


@contextmanager
def routing_duckdb(main_file: Path, production: Path | None, allowed: Path) -> Iterator[None]:
    """``duckdb.connect`` of this process, while inside: the file of the user's profile
    (``production``) opens the test database (``main_file``); ``:memory:`` and files under
    ``allowed`` open as asked; anything else raises :class:`WarehouseConnectionRefused`."""
    # Around a materialization only: not at start-up.
    import duckdb

    real_connect = duckdb.connect

    def connect(database: Any = ":memory:", *args: Any, **kwargs: Any) -> Any:
        where = str(database) if database is not None else ":memory:"
        if where in ("", ":memory:") or where.startswith(":memory:"):
            return real_connect(database, *args, **kwargs)
        if where.startswith(("md:", "motherduck:")):
            raise _refused(where, "it is MotherDuck, a cloud warehouse")
        path = Path(where).expanduser().resolve()
        if production is not None and path == production:
            return real_connect(str(main_file), *args, **kwargs)
        if path.is_relative_to(allowed):
            return real_connect(database, *args, **kwargs)
        raise _refused(where, "it is outside the test's temporary folder")

    duckdb.connect = connect
    try:
        yield
    finally:
        duckdb.connect = real_connect


def _refused(where: str, why: str) -> WarehouseConnectionRefused:
    return WarehouseConnectionRefused(
        f"pytest-dbt-assets refused duckdb.connect({where!r}) during a materialization: {why}, and a test "
        "never reaches a database other than its own temporary one. The file your dbt profile names opens the "
        f"test database on its own; any other needs an override. {OVERRIDE_HINT}"
    )
