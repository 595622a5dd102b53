"""The relations two revisions built, found and compared: each asset's table or view in the
test database (a dbt node's ``relation_name``; a Python asset's table, found by its key as
dagster-duckdb's and dagster-snowflake's I/O managers name it), exported to Parquet on the
base side and compared with the working tree's on the asking side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pytest_dbt_assets.database import open_when_free, quote
from pytest_dbt_assets.diff.data import DataDiff, diff_relation, export_relation
from pytest_dbt_assets.diff.export import digest
from pytest_dbt_assets.diff.keys import unique_key_columns

if TYPE_CHECKING:
    from pytest_dbt_assets.project import DbtAssetsProject


def relation_of(con: duckdb.DuckDBPyConnection, key: str, entry: Mapping[str, Any]) -> str | None:
    """The relation that holds asset ``key`` (``entry`` is its graph record), or None when
    it has none in the database (an asset that writes elsewhere, or was not built)."""
    if entry.get("relation"):
        return str(entry["relation"])
    if entry.get("kind") != "python":
        return None
    *prefix, table = key.split("/")
    rows = con.execute(
        "select table_catalog, table_schema, table_name from information_schema.tables where lower(table_name) = ?",
        [table.lower()],
    ).fetchall()
    if prefix and len(rows) > 1:  # the I/O managers' schema: the key's part before the table
        rows = [row for row in rows if row[1].lower() == prefix[-1].lower()]
    return ".".join(quote(part) for part in rows[0]) if len(rows) == 1 else None


def export_relations(
    project: DbtAssetsProject, graph: Mapping[str, Any], keys: Iterable[str], out: Path
) -> dict[str, dict[str, Any]]:
    """Each built asset's relation written to ``out`` as Parquet: key -> ``{"parquet": file
    name, "columns": {column: type}}``; assets with no relation are left out."""
    exported: dict[str, dict[str, Any]] = {}
    with open_when_free(project.duckdb_path, project.attached_databases) as con:
        if con is None:
            return exported
        for key in sorted(keys):
            relation = relation_of(con, key, graph["assets"].get(key) or {})
            if relation is None:
                continue
            name = f"{digest(key)}.parquet"
            exported[key] = {"parquet": name, "columns": export_relation(con, relation, out / name)}
    return exported


def compare_relations(
    project: DbtAssetsProject,
    current: Mapping[str, Any],
    built: Iterable[str],
    base: Mapping[str, Any],
    base_folder: Path,
    manifest: Mapping[str, Any],
    *,
    label: str,
    examples: int = 3,
    profile: bool = False,
) -> DataDiff:
    """The working tree's relations (``built`` keys, ``current`` graph record) against the base
    run's result, each asset by its unique key from ``manifest`` (else as whole rows)."""
    base_relations = (base.get("materialization") or {}).get("relations") or {}
    keys = sorted(set(built) | set(base_relations))
    tables = {}
    with ExitStack() as stack:
        held = stack.enter_context(open_when_free(project.duckdb_path, project.attached_databases))
        # No test database (nothing built): the base's Parquet files are read all the same.
        con = held if held is not None else stack.enter_context(duckdb.connect())
        for key in keys:
            entry = current["assets"].get(key) or base["graph"]["assets"].get(key) or {}
            relation = relation_of(con, key, entry) if held is not None and key in built else None
            exported = base_relations.get(key)
            if relation is None and exported is None:
                continue  # neither side holds it in the database (an asset writing elsewhere)
            unique_id = entry.get("unique_id")
            tables[key] = diff_relation(
                con,
                key,
                relation,
                base_folder / exported["parquet"] if exported else None,
                exported["columns"] if exported else None,
                unique_key_columns(manifest, unique_id) if unique_id else [],
                examples=examples,
                profile=profile,
            )
    return DataDiff(base=label, tables=tables)
