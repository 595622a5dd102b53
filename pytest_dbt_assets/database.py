"""The test's DuckDB database: opening it (with the databases sources pin), loading the data
of dbt sources, waiting until dbt lets go of it, and reading what a run built (row counts,
column types, a failing test's rows). Every DuckDB connection of the plugin opens here.

DuckDB is imported inside the functions: the session loads this module (through the
baseline store) with the plugin, in every pytest session, most of which open no database."""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.errors import SourceDataError

if TYPE_CHECKING:
    import duckdb

DATA_FILE_SUFFIXES = (".csv", ".parquet", ".json")
_READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".json": "read_json_auto"}


def source_label(source: Mapping[str, Any]) -> str:
    """``"source_name.table_name"``, the way tests name a dbt source."""
    return f"{source['source_name']}.{source['name']}"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def load_sources(
    duckdb_path: Path,
    sources: Iterable[Mapping[str, Any]],
    *,
    provided: Mapping[str, Any],
    data_dir: Path | None,
    attached: Mapping[str, Path] | None = None,
    identifier: Callable[[str], str] = str,
    column_type: Callable[[str], str] = str,
) -> list[str]:
    """Create each dbt source table that does not exist yet in ``duckdb_path``, when there is
    something to create it from.

    Precedence: rows given by the test (``provided``: ``"source.table"`` -> list of dicts,
    CSV path or DataFrame), then ``<data_dir>/<source>/<table>.csv|.parquet|.json``, then an
    empty table typed from the columns declared in the source's YAML. A source with none of
    these is left alone: dbt may never read it (a ``{{ source() }}`` in a SQL comment, a model
    that does not query it), and when dbt does, :func:`missing_source_hint` explains the
    failure. A source that pins ``database: X`` is created in the DuckDB file ``attached[X]``.
    ``identifier`` gives the case the warehouse stores an unquoted name in (Snowflake: upper),
    for tables and columns; ``column_type`` turns a declared ``data_type`` into DuckDB's.
    Returns the labels of the tables created.
    """
    created: list[str] = []
    sources = sorted(sources, key=source_label)
    todo = [source for source in sources if has_data(source, provided, data_dir)]
    if not todo:
        return created
    with open_database(duckdb_path, attached or {}) as con:
        catalog = con.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        for source in todo:
            label = source_label(source)
            database = source.get("database") or catalog
            if database.lower() != catalog.lower() and database.lower() not in {a.lower() for a in attached or {}}:
                raise SourceDataError(
                    f"Source {label} lives in database {database!r}, which the test profile does not "
                    f"attach (the test database is {catalog!r}). This is a bug of pytest-dbt-assets: "
                    "please report it with the source's YAML."
                )
            schema, table = identifier(source["schema"]), identifier(source.get("identifier") or source["name"])
            relation = f"{quote(database)}.{quote(schema)}.{quote(table)}"
            exists = con.execute(
                "select count(*) from information_schema.tables "
                "where table_catalog ilike ? and table_schema ilike ? and table_name ilike ?",
                [database, schema, table],
            ).fetchone()[0]  # type: ignore[index]
            if exists:
                continue
            con.execute(f"create schema if not exists {quote(database)}.{quote(schema)}")
            declared = {identifier(name): column_type(kind) for name, kind in declared_columns(source).items()}
            if label in provided:
                _load_value(con, relation, provided[label], declared, label, identifier)
            elif data_dir is not None and (path := find_data_file(data_dir, source)) is not None:
                reader = f"{_READERS[path.suffix]}({sql_string(path)})"
                _load_query(con, relation, reader, declared, str(path), label, identifier)
            else:
                columns = ", ".join(f"{quote(name)} {kind}" for name, kind in declared.items())
                con.execute(f"create table {relation} ({columns})")
            created.append(label)
    return created


def has_data(source: Mapping[str, Any], provided: Mapping[str, Any], data_dir: Path | None) -> bool:
    """Whether the plugin has something to create ``source`` from: rows, a file or columns."""
    return (
        source_label(source) in provided
        or (data_dir is not None and find_data_file(data_dir, source) is not None)
        or bool(declared_columns(source))
    )


def missing_source_hint(label: str, source_name: str, table_name: str) -> str:
    """The three ways to give a source that dbt reads its data."""
    return (
        f"dbt source {label} has no data: dbt reads it, no selected asset produces it, the test gave "
        "no rows, and it declares no columns. Provide it in one of three ways: "
        f"(1) rows from the test: @pytest.mark.dbt_assets(data={{'{label}': [...]}}) or "
        f"the dbt_assets_data fixture; (2) a file {source_name}/{table_name}.csv "
        "(or .parquet, .json) in the folder named by dbt_assets_data_dir; (3) `columns:` "
        "with `data_type:` under the source table in its YAML, for an empty table."
    )


@functools.cache
def connection_config() -> dict[str, Any]:
    """DuckDB settings of every connection the plugin opens: views written for DuckDB 1
    (fakesnow's among them) use the ``x -> ...`` lambdas that DuckDB 2 turns off."""
    import duckdb

    return {"lambda_syntax": "ENABLE_SINGLE_ARROW"} if int(duckdb.__version__.split(".")[0]) >= 2 else {}


@contextmanager
def open_database(
    duckdb_path: Path, attached: Mapping[str, Path], *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the test database with every pinned database attached under its name."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=read_only, config=connection_config()) as con:
        for alias, path in sorted(attached.items()):
            if read_only and not path.exists():
                continue
            mode = " (read_only)" if read_only else ""
            con.execute(f"attach {sql_string(path)} as {quote(alias)}{mode}")
        yield con


def wait_until_free(duckdb_path: Path, attached: Mapping[str, Path], timeout: float = 300.0) -> str | None:
    """Wait until no other process holds the DuckDB files (a dbt process that is being
    stopped); None when they are free, else DuckDB's lock error after ``timeout`` seconds
    (a hang guard: a dbt process ends within seconds of being stopped)."""
    import duckdb

    try:
        with open_when_free(duckdb_path, attached, timeout):
            return None
    except duckdb.IOException as exc:
        return str(exc).strip()


@contextmanager
def open_when_free(
    duckdb_path: Path, attached: Mapping[str, Path], timeout: float = 300.0
) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection to the test database once no other process holds it (see
    :func:`wait_until_free`), or None when the file does not exist. Raises DuckDB's
    ``IOException`` when it is still held after ``timeout`` seconds."""
    import duckdb

    if not duckdb_path.exists():
        yield None
        return
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        while True:
            try:
                con = stack.enter_context(open_database(duckdb_path, attached, read_only=True))
                break
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield con


def checkpoint(duckdb_path: Path, attached: Mapping[str, Path]) -> None:
    """Write the write-ahead logs of the test database and the pinned ones into their files,
    so that each file alone holds its database (before it is copied)."""
    if not duckdb_path.exists():
        return
    with open_database(duckdb_path, attached) as con:
        for name in (con.execute("select current_database()").fetchone()[0], *sorted(attached)):  # type: ignore[index]
            con.execute(f"checkpoint {quote(name)}")


def drop_relations(duckdb_path: Path, attached: Mapping[str, Path], relations: Iterable[tuple[str, str, str]]) -> None:
    """Drop each ``(database, schema, name)`` table or view that exists, so that the run that
    follows builds it as on an empty database (an incremental model or a snapshot too)."""
    relations = list(relations)
    if not relations or not duckdb_path.exists():
        return
    with open_database(duckdb_path, attached) as con:
        catalog = con.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        for database, schema, name in relations:
            found = con.execute(
                "select table_type from information_schema.tables "
                "where table_catalog ilike ? and table_schema ilike ? and table_name ilike ?",
                [database or catalog, schema, name],
            ).fetchone()
            if found is not None:
                kind = "view" if found[0] == "VIEW" else "table"
                con.execute(f"drop {kind} {quote(database or catalog)}.{quote(schema)}.{quote(name)}")


def declared_columns(source: Mapping[str, Any]) -> dict[str, str]:
    """Column name -> DuckDB type from the source's YAML (VARCHAR where no type is given)."""
    return {name: (column.get("data_type") or "varchar") for name, column in (source.get("columns") or {}).items()}


def find_data_file(data_dir: Path, source: Mapping[str, Any]) -> Path | None:
    for suffix in DATA_FILE_SUFFIXES:
        path = data_dir / source["source_name"] / f"{source['name']}{suffix}"
        if path.is_file():
            return path
    return None


def sql_string(value: Any) -> str:
    """``value``'s text as a SQL string literal (a path, a name)."""
    return "'" + str(value).replace("'", "''") + "'"


def _load_value(
    con: Any, relation: str, value: Any, declared: dict[str, str], label: str, identifier: Callable[[str], str]
) -> None:
    if isinstance(value, (str, Path)):
        path = Path(value)
        if path.suffix not in _READERS:
            raise SourceDataError(f"Data for source {label}: {path} is not a .csv, .parquet or .json file.")
        if not path.is_file():
            raise SourceDataError(f"Data for source {label}: file {path} does not exist.")
        reader = f"{_READERS[path.suffix]}({sql_string(path.resolve())})"
        _load_query(con, relation, reader, declared, str(path), label, identifier)
    elif isinstance(value, list):
        if not value:
            if not declared:
                raise SourceDataError(
                    f"Data for source {label} is an empty list and the source declares no columns: "
                    "give at least one row, or declare `columns:` with `data_type:` in its YAML."
                )
            columns = ", ".join(f"{quote(name)} {kind}" for name, kind in declared.items())
            con.execute(f"create table {relation} ({columns})")
            return
        if not all(isinstance(row, Mapping) for row in value):
            raise SourceDataError(f"Data for source {label} must be a list of dicts (one per row).")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rows.json"
            path.write_text("\n".join(json.dumps(dict(row), default=str) for row in value), encoding="utf-8")
            reader = f"read_json({sql_string(path)}, format='newline_delimited')"
            _load_query(con, relation, reader, declared, "rows", label, identifier)
    elif hasattr(value, "__arrow_c_stream__") or hasattr(value, "to_arrow") or type(value).__name__ == "DataFrame":
        con.register("_dbt_assets_frame", value)
        try:
            _load_query(con, relation, "_dbt_assets_frame", declared, "DataFrame", label, identifier)
        finally:
            con.unregister("_dbt_assets_frame")
    else:
        raise SourceDataError(
            f"Data for source {label} is a {type(value).__name__}; give a list of dicts, a path to "
            "a .csv/.parquet/.json file, or a DataFrame."
        )


def _load_query(
    con: Any,
    relation: str,
    from_sql: str,
    declared: dict[str, str],
    origin: str,
    label: str,
    identifier: Callable[[str], str],
) -> None:
    """``create table relation as select ... from from_sql``, each column named as the
    warehouse stores it (``identifier``) and cast to its declared type (``declared`` is keyed
    by those names)."""
    import duckdb

    try:
        present = [row[0] for row in con.execute(f"describe select * from {from_sql}").fetchall()]
        stored = {identifier(name): name for name in present}
        select = []
        for name, read in stored.items():
            kind = declared.get(name)
            select.append(
                f"cast({quote(read)} as {kind}) as {quote(name)}" if kind else f"{quote(read)} as {quote(name)}"
            )
        for name, kind in declared.items():
            if name not in stored:
                select.append(f"cast(null as {kind}) as {quote(name)}")
        con.execute(f"create table {relation} as select {', '.join(select)} from {from_sql}")
    except duckdb.Error as exc:
        reason = _load_error_text(exc, origin)
        raise SourceDataError(f"Could not load data for source {label} from {origin}: {reason}") from None


def _load_error_text(exc: Exception, origin: str) -> str:
    """DuckDB's reason, short: its CSV errors append a sniffer report and options the test cannot set."""
    text = str(exc).strip()
    path = Path(origin)
    if "unicode" in text.lower() or "utf-8" in text.lower() or "encoding" in text.lower():
        where = ""
        if path.is_file():
            raw = path.read_bytes()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as decode_error:
                line = raw.count(b"\n", 0, decode_error.start) + 1
                where = f" (byte 0x{raw[decode_error.start]:02x} on line {line})"
        return f"the file is not UTF-8 encoded{where}. Save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
    return text.split("\n\n")[0].strip()


def describe_relations(
    duckdb_path: Path, relations: Mapping[str, str], attached: Mapping[str, Path] | None = None, timeout: float = 300.0
) -> tuple[dict[str, int], dict[str, dict[str, str]], str | None]:
    """For each relation (views included), on one read-only connection opened once no other
    process holds the database (:func:`open_when_free`, so the run's end needs no second
    connection to wait on): ``key -> count(*)`` and ``key -> {column: DuckDB type}`` in
    column order, and DuckDB's lock error when it is still held after ``timeout`` seconds
    (else None). Relations not built are left out."""
    import duckdb

    counts: dict[str, int] = {}
    columns: dict[str, dict[str, str]] = {}
    with ExitStack() as stack:
        try:
            con = stack.enter_context(open_when_free(duckdb_path, attached or {}, timeout))
        except duckdb.IOException as exc:
            return counts, columns, str(exc).strip()  # still locked after the hang guard
        for key, relation in sorted(relations.items()):
            if con is None:
                break
            try:
                counts[key] = int(con.execute(f"select count(*) from {relation}").fetchone()[0])  # type: ignore[index]
                rows = con.execute(f"describe select * from {relation}").fetchall()
            except duckdb.CatalogException:
                continue  # not built in this database (e.g. it failed)
            columns[key] = {row[0]: row[1] for row in rows}
    return counts, columns, None


def failing_rows(
    duckdb_path: Path, attached: Mapping[str, Path], sql: str, limit: int = 5
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The first ``limit`` rows a dbt test's compiled SQL returns (its failing rows), in a
    stable order; None when the query cannot run (the relation is gone, say)."""
    import duckdb

    body = sql.strip().rstrip(";")
    if not body or not duckdb_path.exists():
        return None
    try:
        with open_database(duckdb_path, attached, read_only=True) as con:
            cursor = con.execute(f"select * from (\n{body}\n) as dbt_assets_failing order by all limit {int(limit)}")
            names = [column[0] for column in cursor.description or []]
            return names, cursor.fetchall()
    except duckdb.Error:
        return None
