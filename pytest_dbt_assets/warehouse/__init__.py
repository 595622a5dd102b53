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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_dbt_assets.errors import WarehouseError
from pytest_dbt_assets.warehouse.base import DEFAULT_TARGET, Backend, UserTarget
from pytest_dbt_assets.warehouse.duckdb import DuckDBBackend

# Where dbt looks for profiles.yml, after the environment variables: the project, the folder
# pytest runs in (the rootdir), the user's home.
PROFILES_ENV_VARS = ("DBT_ENGINE_PROFILES_DIR", "DBT_PROFILES_DIR")
SERVED = ("duckdb", "snowflake")


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
    # Only for a templated value; jinja2 is otherwise never needed at start-up.
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
    if target is not None and target.type == "snowflake":
        # Imports fakesnow's and sqlglot's helpers: only for a Snowflake project.
        from pytest_dbt_assets.warehouse.snowflake import SnowflakeBackend

        return SnowflakeBackend(target)
    return DuckDBBackend(target or DEFAULT_TARGET)
