"""Guards that keep ``dbt_assets_project.dbt()`` and ``.query()`` inside the test's temp folder.

``dbt()`` refuses the dbt flags that would point dbt at another profile, target or folder
(click takes the last value of a repeated option, and the user's arguments come after the
plugin's own flags). ``query()`` runs on a DuckDB connection that is read-only and has no
file access beyond the test database and the databases the project pins.

Nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_dbt_assets.argv import dbt_options, short_group
from pytest_dbt_assets.database import open_database
from pytest_dbt_assets.errors import DbtIsolationError, ReadOnlyQueryError

# dbt's click parameter names (dbt/cli/params.py) that point dbt somewhere else, and why.
# Not refused, because they do not change where dbt connects or writes: --state,
# --defer-state, --defer, --favor-state (read artefacts of another run; relations still
# live in the test database), --config-dir (`dbt debug` only prints the profiles folder),
# --output/-o (a file the caller names explicitly), --vars.
REDIRECTING_PARAMS: dict[str, str] = {
    "profiles_dir": "it would read another profiles.yml, whose targets can be your warehouse",
    "profile": "it would select another profile than the plugin's DuckDB-only one",
    "target": "it would select another target than the plugin's DuckDB target",
    "project_dir": "it would run dbt on another project folder than the temporary copy (your own tree)",
    "target_path": "it would write dbt's artefacts outside the temporary project (into your tree)",
    "log_path": "it would write dbt's logs outside the temporary project",
    "partial_parse_file_path": "it would read another project's saved parse state",
}

# The same, as flags, in case dbt's click commands stop declaring one of them.
_KNOWN_FLAGS: dict[str, str] = {
    "--profiles-dir": "profiles_dir",
    "--profile": "profile",
    "--target": "target",
    "-t": "target",
    "--project-dir": "project_dir",
    "--target-path": "target_path",
    "--log-path": "log_path",
    "--partial-parse-file-path": "partial_parse_file_path",
}


def find_redirecting_flags(args: Sequence[str]) -> list[tuple[str, str]]:
    """``(argument as written, dbt parameter name)`` for each argument that would redirect dbt.

    Knows ``--flag value``, ``--flag=value``, ``-t value``, ``-tvalue`` and short flags
    grouped as ``-xt value`` (dbt's own click commands say which flags take a value, see
    :func:`argv.dbt_options`). Every argument that starts with a dash is checked, values
    included: a refused flag is never taken for the value of the option before it.
    """
    args = [str(arg) for arg in args]  # a Path given as a value
    options = dbt_options(args)
    refused = dict(_KNOWN_FLAGS)
    refused.update({flag: name for flag, name in options.params.items() if name in REDIRECTING_PARAMS})
    short_value_flags = options.takes_value & options.shorts
    found: list[tuple[str, str]] = []
    for token in args:
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            if name in refused:
                found.append((token, refused[name]))
            continue
        for flag in short_group(token, short_value_flags):
            if flag in refused:
                found.append((token, refused[flag]))
                break
    return found


def validate_dbt_args(args: Sequence[str]) -> None:
    """Raise :class:`DbtIsolationError` naming each flag that would point dbt elsewhere."""
    __tracebackhide__ = True
    found = find_redirecting_flags(args)
    if not found:
        return
    lines = [
        f"dbt_assets_project.dbt({', '.join(repr(arg) for arg in args)}) was refused: "
        + ("this flag points" if len(found) == 1 else "these flags point")
        + " dbt outside the test's temporary project and DuckDB database."
    ]
    for token, param in found:
        lines.append(f"  {token}: {REDIRECTING_PARAMS[param]}.")
    lines.append(
        "dbt() always runs with the plugin's own profile (dbt_assets_project.profile_name), its only "
        "target (dbt_assets_project.target_name: DuckDB at dbt_assets_project.duckdb_path), its "
        "profiles.yml (dbt_assets_project.profiles_dir) and the temporary copy "
        "(dbt_assets_project.project_dir); it passes those flags itself. Drop the flag. For another "
        "artefact folder pass target_path=... to dbt(); to run against your own warehouse, run dbt "
        "outside the tests."
    )
    raise DbtIsolationError("\n".join(lines))


# What DuckDB says when the locked, read-only connection refuses a statement.
_REFUSALS = (
    "read-only mode",
    "file system operations are disabled",
    "configuration has been locked",
    "disabled through configuration",
    "external access",
)


@contextmanager
def read_only_connection(
    duckdb_path: Path, attached: Mapping[str, Path], *, search_path: str | None = None
) -> Iterator[Any]:
    """A DuckDB connection to ``duckdb_path`` that cannot write or touch any other file.

    The databases in ``attached`` (alias -> file) that exist are attached read-only first
    (:func:`database.open_database`); then external access is switched off and the configuration
    locked, so neither ``SET`` nor ``ATTACH``, ``COPY``, ``EXPORT``, ``read_csv``,
    ``INSTALL`` or ``LOAD`` gets through. ``search_path`` (``DATABASE.SCHEMA``) is where
    unqualified names resolve.
    """
    with open_database(duckdb_path, attached, read_only=True) as con:
        if search_path is not None:
            con.execute("SET search_path = ?", [search_path])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con


def run_read_only(
    duckdb_path: Path, attached: Mapping[str, Path], sql: str, parameters: Any, *, search_path: str | None = None
) -> list[tuple[Any, ...]]:
    """Rows of ``sql``; a statement that would write or reach a file raises :class:`ReadOnlyQueryError`."""
    __tracebackhide__ = True
    # Only when a test queries the database: not at start-up.
    import duckdb

    with read_only_connection(duckdb_path, attached, search_path=search_path) as con:
        try:
            return con.execute(sql, parameters).fetchall()
        except (duckdb.PermissionException, duckdb.InvalidInputException, duckdb.CatalogException) as error:
            text = str(error)
            if not any(refusal in text for refusal in _REFUSALS):
                raise
        statement = " ".join(sql.split())
        statement = statement if len(statement) <= 200 else statement[:197] + "..."
        raise ReadOnlyQueryError(
            f"dbt_assets_project.query() is read-only and refused `{statement}`.\n"
            f"  DuckDB: {text.strip()}\n"
            "query() reads the test database (dbt_assets_project.duckdb_path) and the databases your "
            "sources pin, and nothing else: no writes, no SET, no ATTACH, INSTALL or LOAD, no file "
            "read or written (COPY, EXPORT DATABASE, read_csv). To change data, run dbt with "
            'dbt_assets_project.dbt("seed") / dbt_assets_project.dbt("run", "--select", ...) or '
            "dbt_assets_materialize(...), or use a resource of your definitions (dbt_assets_resources); "
            "to read a file in a test, open it in Python."
            + (
                " A view that reads a file itself (a dbt-duckdb external source or model) cannot be "
                "queried here either: query a model built as a table from it."
                if "Cannot access file" in text
                else ""
            )
        ) from None
