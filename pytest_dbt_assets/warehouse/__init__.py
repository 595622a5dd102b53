"""The warehouse seam: which SQL dialect the user's dbt project is written in, and the backend
that serves it on DuckDB files under pytest's basetemp.

The test database is always DuckDB. What varies is how dbt reaches it and what the user's
code expects of it: :mod:`.duckdb` (dbt-duckdb, as the project runs in production) and
:mod:`.snowflake` (the user's own dbt-snowflake, its connection served by fakesnow). Any other
adapter is tested on dbt-duckdb, with one sentence at session start (:func:`foreign_note`).

The dialect is read from the repo's own ``profiles.yml`` (:func:`read_user_target`): only the
default target's ``type``, ``database``, ``schema`` and ``path``, rendered as dbt renders
them; credentials are never read. Nothing here imports pytest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_dbt_assets.errors import WarehouseError

# Where dbt looks for profiles.yml, after the environment variables: the project, the folder
# pytest runs in (the rootdir), the user's home.
PROFILES_ENV_VARS = ("DBT_ENGINE_PROFILES_DIR", "DBT_PROFILES_DIR")
# The end of every refused connection's message.
OVERRIDE_HINT = (
    "Replace the resource that connects in conftest.py: override the dbt_assets_resources fixture to "
    "return {'<resource key>': <your resource> pointed at the test database, "
    "str(dbt_assets_project.duckdb_path)}."
)
SERVED = ("duckdb", "snowflake")


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


def parse_warehouse_option(value: str) -> UserTarget:
    """``dbt_assets_warehouse``: ``duckdb``, ``snowflake``, ``snowflake:DATABASE.SCHEMA`` or
    another adapter's name; for a repo without a profiles.yml (the option wins over one).

    Raises:
        WarehouseError: the value has an empty part.
    """
    kind, _, where = value.strip().partition(":")
    database, _, schema = where.partition(".")
    if not kind or (where and not (database and schema)):
        raise WarehouseError(
            f"dbt_assets_warehouse = {value!r}: write the adapter type (duckdb, snowflake, ...), for Snowflake "
            "optionally with the database and schema your models build in (snowflake:ANALYTICS.PUBLIC)."
        )
    return UserTarget(
        type=kind.lower(),
        database=database or None,
        schema=schema or None,
        origin=f"dbt_assets_warehouse = {value!r}",
    )


def find_profiles_yml(project_dir: Path, rootdir: Path, environ: Mapping[str, str]) -> Path | None:
    """The profiles.yml dbt would read for ``project_dir``: ``DBT_PROFILES_DIR`` (or its
    ``DBT_ENGINE_`` spelling), then the project, then the rootdir, then ``~/.dbt``."""
    folders = [Path(environ[name]) for name in PROFILES_ENV_VARS if environ.get(name)]
    folders += [project_dir, rootdir, Path(environ.get("HOME") or Path.home()) / ".dbt"]
    for folder in folders:
        if (folder / "profiles.yml").is_file():
            return folder / "profiles.yml"
    return None


def read_user_target(
    project_dir: Path, profile_name: str, *, rootdir: Path, environ: Mapping[str, str] | None = None
) -> UserTarget | None:
    """The default target of ``profile_name`` in the profiles.yml dbt would read, or None when
    there is none (no file, no such profile, unreadable YAML: the project is then served as
    DuckDB, as before this was read). Values are rendered with dbt's ``env_var()``; a value
    that cannot be rendered (an unset variable without default) is None."""
    environ = os.environ if environ is None else environ
    path = find_profiles_yml(project_dir, rootdir, environ)
    if path is None:
        return None
    try:
        profiles = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        profile = profiles.get(profile_name) if isinstance(profiles, dict) else None
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(profile, dict) or not isinstance(profile.get("outputs"), dict):
        return None
    outputs = profile["outputs"]
    name = render(profile.get("target", "default"), environ)
    output = outputs.get(name) if name is not None else None
    if not isinstance(output, dict):
        return None
    kind = render(output.get("type"), environ)
    if kind is None:
        return None
    where = path.parent.relative_to(rootdir) if path.parent.is_relative_to(rootdir) else path.parent
    duckdb_path = render(output.get("path"), environ) if kind == "duckdb" else None
    return UserTarget(
        type=kind.lower(),
        database=render(output.get("database"), environ),
        schema=render(output.get("schema"), environ),
        path=(project_dir / duckdb_path).resolve() if duckdb_path and not duckdb_path.startswith("md:") else None,
        origin=f"{where / 'profiles.yml'}, profile {profile_name}, target {name}",
    )


def render(value: Any, environ: Mapping[str, str]) -> str | None:
    """A profile value rendered as dbt renders it (``{{ env_var('X', 'default') }}``); None
    when it is missing or reads an unset variable without a default."""
    if value is None:
        return None
    text = str(value)
    if "{" not in text:
        return text
    import jinja2

    class Unset(Exception):
        pass

    def env_var(name: str, default: Any = None) -> str:
        if name in environ:
            return environ[name]
        if default is None:
            raise Unset(name)
        return str(default)

    try:
        return jinja2.Environment().from_string(text).render(env_var=env_var, var=lambda name, default="": default)
    except (Unset, jinja2.TemplateError):
        return None


def foreign_note(target: UserTarget) -> str | None:
    """The one sentence a session on another adapter than those served gets, or None."""
    if target.type in SERVED:
        return None
    return (
        f"pytest-dbt-assets: your profile's target is {target.type} ({target.origin}); the plugin serves "
        "duckdb and snowflake projects. The asset graph is tested as usual, but materializations run on "
        f"DuckDB's SQL (dbt-duckdb), so a model using {target.type}-only SQL fails there. Write such SQL "
        "behind `{% if target.type == 'duckdb' %}` or a dispatched macro (`duckdb__...`), or test only the graph."
    )


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


def choose_backend(project_dir: Path, rootdir: Path, option: str | None) -> Backend:
    """The backend for the dbt project at ``project_dir``: as ``dbt_assets_warehouse``
    (``option``) says, else as the user's own profile says, else DuckDB's.

    Raises:
        WarehouseError: the option cannot be read, or a Snowflake target's adapter or
            emulator is not installed.
    """
    if option is not None:
        return backend_for(parse_warehouse_option(option))
    try:
        data = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return backend_for(None)  # the project's own errors are told where it is read
    profile = str(data.get("profile") or data.get("name") or "") if isinstance(data, dict) else ""
    return backend_for(read_user_target(project_dir, profile, rootdir=rootdir) if profile else None)


def backend_for(target: UserTarget | None) -> Backend:
    """The backend for the user's target: Snowflake's for ``snowflake``, DuckDB's otherwise.

    Raises:
        WarehouseError: a Snowflake target whose adapter or emulator is not installed.
    """
    from pytest_dbt_assets.warehouse.duckdb import DuckDBBackend

    if target is not None and target.type == "snowflake":
        from pytest_dbt_assets.warehouse.snowflake import SnowflakeBackend

        return SnowflakeBackend(target)
    return DuckDBBackend(target or DEFAULT_TARGET)
