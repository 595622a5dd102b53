"""What every warehouse backend shares: the user's target, the backend's base class, and the
helpers the backends use to recognise and copy the user's warehouse resources.

Split from the package's ``__init__`` (which chooses the backend, importing each backend's
module) so that the backends import this module, not the package that imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The end of every refused connection's message.
OVERRIDE_HINT = (
    "Replace the resource that connects in conftest.py: override the dbt_assets_resources fixture to "
    "return {'<resource key>': <your resource> pointed at the test database, "
    "str(dbt_assets_project.duckdb_path)}."
)


@dataclass(frozen=True)
class UserTarget:
    """What the user's own profile says of their default target (never credentials).

    Attributes:
        type: the adapter (``duckdb``, ``snowflake``, ``bigquery``, ...).
        database: the database their models build in (Snowflake), or None.
        schema: the schema their models build in, or None.
        path: the DuckDB file a ``duckdb`` target names, resolved against the dbt project.
        origin: where it was read, for messages (``jaffle/profiles.yml, target prod``).
    """

    type: str
    database: str | None = None
    schema: str | None = None
    path: Path | None = None
    origin: str = "the plugin's default"


DEFAULT_TARGET = UserTarget(type="duckdb")


class Backend:
    """How the test database is served for one SQL dialect; one subclass per warehouse.

    A backend is chosen once per session (:func:`backend_for`) and carried by each temporary
    project. Its files live in one folder under the project's workdir: the main database
    (``main_file``) and one file per further database the project names.
    """

    name = "duckdb"
    # The schema unqualified names in dbt_assets_project.query() resolve in (None: DuckDB's).
    search_path: str | None = None

    def __init__(self, target: UserTarget = DEFAULT_TARGET) -> None:
        self.target = target

    def main_file(self, workdir: Path) -> Path:
        """The test database's file for a project copied into ``workdir``."""
        raise NotImplementedError

    def database_file(self, main_file: Path, name: str) -> Path:
        """The file of the further database ``name`` beside ``main_file``."""
        raise NotImplementedError

    def profile_output(self, main_file: Path, attached: Mapping[str, Path]) -> dict[str, Any]:
        """The only target of the generated profile."""
        raise NotImplementedError

    def further_databases(self, manifest: Mapping[str, Any]) -> set[str]:
        """Names of the databases besides the main one that ``manifest`` builds in or reads."""
        raise NotImplementedError

    def reset(self, main_file: Path, attached: Mapping[str, Path]) -> None:
        """Delete the test database's files (and their write-ahead logs)."""
        for database in (main_file, *attached.values()):
            for path in (database, database.with_name(database.name + ".wal")):
                path.unlink(missing_ok=True)

    def create_databases(self, main_file: Path, attached: Mapping[str, Path], schemas: set[tuple[str, str]]) -> None:
        """Make the test database, the further ones and the ``(database, schema)`` pairs the
        project's sources name exist (``""``: the test database), empty, as in production.
        DuckDB's are made by dbt-duckdb and by the source loading as they are needed."""

    def test_resources(self, resources: Mapping[str, Any], main_file: Path) -> dict[str, Any]:
        """``resources`` with the warehouse clients this backend recognises made to reach the
        test database even where their own configuration cannot be read (an unset ``EnvVar``:
        a pull request's CI has no secrets)."""
        return dict(resources)

    @contextmanager
    def running_dbt(self, main_file: Path) -> Iterator[None]:
        """Around a dbt command run in this process (``dbt_assets_project.dbt()``)."""
        yield

    def dbt_executable(self, workdir: Path) -> str | None:
        """The ``dbt`` dagster-dbt starts with the subprocess runner (None: the resource's own)."""
        return None

    def dbt_environment(self, main_file: Path) -> dict[str, str]:
        """Variables each dbt process needs to reach the test database (none for DuckDB)."""
        return {}

    @contextmanager
    def serving(self, main_file: Path, *, allowed: Path) -> Iterator[None]:
        """Inside: the warehouse clients of this process reach the test database, and a
        connection anywhere else (outside ``allowed``, pytest's basetemp) is refused."""
        yield

    def to_duckdb_sql(self, sql: str) -> str:
        """``sql`` as written in the project's dialect, in DuckDB's."""
        return sql

    def failure_hint(self, message: str) -> str | None:
        """A sentence for a dbt error whose cause is how the test database is served, or None."""
        return None

    def identifier(self, name: str) -> str:
        """An unquoted identifier as the warehouse stores it."""
        return name

    def column_type(self, declared: str) -> str:
        """A column's ``data_type`` as written in the project's YAML, in DuckDB's words."""
        return declared

    def fingerprint_text(self) -> str:
        """What the manifest cache must know of this backend: the dialect, the adapter's
        version and the generated profile's database and schema."""
        return f"warehouse={self.name}"


def imported_classes(module: str, *names: str) -> tuple[type, ...]:
    """The classes ``names`` of ``module`` when the user's code imported it (a resource of
    theirs is one of them only then), else none."""
    found = sys.modules.get(module)
    return tuple(cls for name in names if (cls := getattr(found, name, None)) is not None) if found else ()


def resolved_config(resource: Any) -> tuple[dict[str, Any], set[str]]:
    """A Dagster resource's set fields by their names in its constructor, each ``EnvVar``
    read now, for a copy made with some of them replaced; and the names of those whose
    ``EnvVar`` is unset (left out of the values)."""
    # Called on the user's resources, when Dagster is imported: not at start-up.
    from dagster import EnvVar

    values: dict[str, Any] = {}
    unset: set[str] = set()
    model: Any = type(resource)  # a pydantic model: Dagster's config
    fields: dict[str, Any] = model.model_fields
    for name, field in fields.items():
        value = getattr(resource, name, None)
        if isinstance(value, EnvVar):
            value = value.get_value()
            if value is None:
                unset.add(field.alias or name)
        if value is not None:
            values[field.alias or name] = value
    return values, unset
