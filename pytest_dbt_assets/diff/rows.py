"""The row comparison of one relation with its base Parquet, in DuckDB SQL.

Everything runs on the caller's connection with ``WITH`` clauses only (no temporary
objects, so a read-only connection works); Python receives counts and at most a few example
rows, never a table.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pytest_dbt_assets.database import quote, sql_string

# The base side's extra columns: the text of a value that does not cast to the current type.
_RAW = "__datadiff_raw_{}"
# Each side's marker in a full outer join: NULL where the row has no partner.
_HERE = "__datadiff_here"


def parquet_source(path: Path) -> str:
    """The SQL that reads the Parquet file at ``path``."""
    return f"read_parquet({sql_string(path)})"


def columns_of(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """``{column: DuckDB type}`` of ``source`` (a relation or table function), in column order."""
    return {name: type_ for name, type_, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def count_rows(con: duckdb.DuckDBPyConnection, source: str) -> int:
    """``count(*)`` of ``source``."""
    row = con.execute(f"SELECT count(*) FROM {source}").fetchone()
    assert row is not None  # an aggregate always returns one row
    return int(row[0])


def plain(value: Any) -> Any:
    """``value`` as stable JSON-able data: dates, times, decimals, UUIDs and intervals as
    ISO-like strings, NaN and infinities as strings, nested values converted inside."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return str(value)


@dataclass(frozen=True)
class Sides:
    """Both sides of one comparison as SQL: ``b`` (the base Parquet) and ``c`` (the current
    relation), each selecting the common columns in the current order.

    A base column whose Parquet type differs from the current type (the column was retyped,
    or Parquet cannot hold the type, such as an ENUM) is read with ``TRY_CAST`` to the
    current type; a value that does not cast becomes NULL there, and its text is kept in an
    extra column so that it still counts as a difference.

    Attributes:
        base: SQL of the base source (``read_parquet(...)``).
        current: SQL of the current relation.
        columns: the common columns, in the current relation's order.
        casts: column -> current type, for the base columns read through ``TRY_CAST``.
    """

    base: str
    current: str
    columns: list[str]
    casts: dict[str, str]

    @property
    def raws(self) -> dict[str, str]:
        """Column -> the name of its extra column of uncast base text."""
        return {name: _RAW.format(i) for i, name in enumerate(self.columns) if name in self.casts}

    def with_clause(self) -> str:
        """``WITH b AS (...), c AS (...)``: each side with a presence marker for joins."""
        base, current = [], []
        for name in self.columns:
            column = quote(name)
            if name in self.casts:
                cast = f"TRY_CAST({column} AS {self.casts[name]})"
                base.append(f"{cast} AS {column}")
                current.append(column)
            else:
                base.append(column)
                current.append(column)
        for name, raw in self.raws.items():
            column = quote(name)
            uncast = f"{column} IS NOT NULL AND TRY_CAST({column} AS {self.casts[name]}) IS NULL"
            base.append(f"CASE WHEN {uncast} THEN CAST({column} AS VARCHAR) END AS {quote(raw)}")
            current.append(f"NULL::VARCHAR AS {quote(raw)}")
        base.append(f"true AS {_HERE}")
        current.append(f"true AS {_HERE}")
        return f"WITH b AS (SELECT {', '.join(base)} FROM {self.base}), c AS (SELECT {', '.join(current)} FROM {self.current})"

    def differs(self, name: str) -> str:
        """SQL true where the joined ``b`` and ``c`` rows differ in column ``name`` (NULL-safe)."""
        column = quote(name)
        test = f"c.{column} IS DISTINCT FROM b.{column}"
        raw = self.raws.get(name)
        return f"({test} OR b.{quote(raw)} IS NOT NULL)" if raw else f"({test})"

    def key_match(self, keys: Sequence[str]) -> str:
        """SQL join condition: the same key on both sides (NULL matches NULL, an uncast key nothing)."""
        terms = [f"c.{quote(k)} IS NOT DISTINCT FROM b.{quote(k)}" for k in keys]
        terms += [f"b.{quote(self.raws[k])} IS NULL" for k in keys if k in self.raws]
        return " AND ".join(terms)

    def row_values(self, row: Sequence[Any], side: str) -> dict[str, Any]:
        """An example row fetched as ``columns`` then ``raws`` -> ``{column: plain value}``;
        a base value that did not cast shows as its text."""
        values = dict(zip(self.columns, row, strict=False))
        if side == "b":
            for offset, name in enumerate(self.raws):
                text = row[len(self.columns) + offset]
                if text is not None:
                    values[name] = text
        return {name: plain(value) for name, value in values.items()}

    def select(self, side: str) -> str:
        """The columns of one side as compared: common columns, then the uncast texts."""
        return ", ".join(f"{side}.{quote(name)}" for name in [*self.columns, *self.raws.values()])


def has_duplicate_keys(con: duckdb.DuckDBPyConnection, sides: Sides, keys: Sequence[str], side: str) -> bool:
    """Whether two rows of ``side`` (``"b"`` or ``"c"``) share a key (NULLs grouped together)."""
    group = ", ".join(quote(k) for k in keys)
    sql = f"{sides.with_clause()} SELECT 1 FROM {side} GROUP BY {group} HAVING count(*) > 1 LIMIT 1"
    return con.execute(sql).fetchone() is not None


@dataclass(frozen=True)
class RowChanges:
    """What differs between the rows of two sides.

    Attributes:
        added: rows only in current.
        removed: rows only in base.
        changed: keyed only: rows of one key whose compared columns differ.
        changed_columns: sorted, the columns that differ in some changed row.
        examples: ``"added"``/``"removed"``: rows as dicts; ``"changed"``: ``{"key", "before",
            "after"}`` with only the differing columns.
    """

    added: int
    removed: int
    changed: int
    changed_columns: list[str]
    examples: dict[str, list[dict[str, Any]]]


def keyed_changes(con: duckdb.DuckDBPyConnection, sides: Sides, keys: Sequence[str], limit: int) -> RowChanges:
    """Rows matched by ``keys`` (unique on both sides): added, removed, and changed in a common column."""
    compared = [name for name in sides.columns if name not in keys]
    match = sides.key_match(keys)
    flags = [sides.differs(name) for name in compared]
    any_flag = " OR ".join(flags) or "false"
    counts = [
        f"count(*) FILTER (WHERE b.{_HERE} IS NULL)",
        f"count(*) FILTER (WHERE c.{_HERE} IS NULL)",
        f"count(*) FILTER (WHERE b.{_HERE} AND c.{_HERE} AND ({any_flag}))",
        *(f"count(*) FILTER (WHERE b.{_HERE} AND c.{_HERE} AND {flag})" for flag in flags),
    ]
    sql = f"{sides.with_clause()} SELECT {', '.join(counts)} FROM c FULL OUTER JOIN b ON {match}"
    row = con.execute(sql).fetchone()
    assert row is not None
    added, removed, changed, *per_column = (int(n) for n in row)
    changed_columns = sorted(name for name, n in zip(compared, per_column, strict=True) if n)

    examples = _no_examples()
    for kind, count, side, other in (("added", added, "c", "b"), ("removed", removed, "b", "c")):
        if count and limit:
            order = ", ".join(f"{side}.{quote(k)} NULLS FIRST" for k in keys)
            sql = (
                f"{sides.with_clause()} SELECT {sides.select(side)} FROM {side} ANTI JOIN {other} ON {match}"
                f" ORDER BY {order} LIMIT {limit}"
            )
            examples[kind] = [sides.row_values(r, side) for r in con.execute(sql).fetchall()]
    if changed and limit:
        examples["changed"] = _changed_examples(con, sides, keys, compared, limit)
    return RowChanges(added, removed, changed, changed_columns, examples)


def _changed_examples(
    con: duckdb.DuckDBPyConnection, sides: Sides, keys: Sequence[str], compared: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The first changed rows by key, each with only the columns that differ, before and after."""
    flags = [sides.differs(name) for name in compared]
    select = [f"c.{quote(k)}" for k in keys]
    for flag, name in zip(flags, compared, strict=True):
        raw = f"b.{quote(sides.raws[name])}" if name in sides.raws else "NULL"
        select.append(f"{flag}, b.{quote(name)}, {raw}, c.{quote(name)}")
    order = ", ".join(f"c.{quote(k)} NULLS FIRST" for k in keys)
    sql = (
        f"{sides.with_clause()} SELECT {', '.join(select)} FROM c JOIN b ON {sides.key_match(keys)}"
        f" WHERE {' OR '.join(flags)} ORDER BY {order} LIMIT {limit}"
    )
    found = []
    for row in con.execute(sql).fetchall():
        before, after = {}, {}
        for i, name in enumerate(compared):
            differs, old, text, new = row[len(keys) + 4 * i : len(keys) + 4 * i + 4]
            if differs:
                before[name] = text if text is not None else plain(old)
                after[name] = plain(new)
        key = {k: plain(v) for k, v in zip(keys, row, strict=False)}
        found.append({"key": key, "before": before, "after": after})
    return found


def whole_row_changes(con: duckdb.DuckDBPyConnection, sides: Sides, limit: int) -> RowChanges:
    """Rows compared whole, as multisets (``EXCEPT ALL`` both ways); nothing is "changed"."""
    if not sides.columns:  # no common column: rows are equal empty tuples, only counts differ
        base, current = count_rows(con, sides.base), count_rows(con, sides.current)
        return RowChanges(max(current - base, 0), max(base - current, 0), 0, [], _no_examples())
    only = {
        "added": f"SELECT {sides.select('c')} FROM c EXCEPT ALL SELECT {sides.select('b')} FROM b",
        "removed": f"SELECT {sides.select('b')} FROM b EXCEPT ALL SELECT {sides.select('c')} FROM c",
    }
    sql = f"{sides.with_clause()} SELECT (SELECT count(*) FROM ({only['added']})), (SELECT count(*) FROM ({only['removed']}))"
    row = con.execute(sql).fetchone()
    assert row is not None
    added, removed = int(row[0]), int(row[1])
    examples = _no_examples()
    for kind, count in (("added", added), ("removed", removed)):
        if count and limit:
            sql = f"{sides.with_clause()} SELECT * FROM ({only[kind]}) ORDER BY ALL NULLS FIRST LIMIT {limit}"
            side = "c" if kind == "added" else "b"
            examples[kind] = [sides.row_values(r, side) for r in con.execute(sql).fetchall()]
    return RowChanges(added, removed, 0, [], examples)


def first_rows(con: duckdb.DuckDBPyConnection, source: str, keys: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of ``source`` (an asset only one side has), by ``keys`` else by all columns."""
    if not limit:
        return []
    order = ", ".join(f"{quote(k)} NULLS FIRST" for k in keys) if keys else "ALL NULLS FIRST"
    result = con.execute(f"SELECT * FROM {source} ORDER BY {order} LIMIT {limit}")
    names = [d[0] for d in result.description]
    return [{name: plain(v) for name, v in zip(names, r, strict=True)} for r in result.fetchall()]


def profile(con: duckdb.DuckDBPyConnection, source: str, columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{column: {"nulls", "distinct", "min", "max"}}`` of ``source``, in one pass."""
    if not columns:
        return {}
    aggregates = []
    for name in columns:
        column = quote(name)
        aggregates += [f"count(*) - count({column})", f"count(DISTINCT {column})", f"min({column})", f"max({column})"]
    row = con.execute(f"SELECT {', '.join(aggregates)} FROM {source}").fetchone()
    assert row is not None
    return {
        name: {
            "nulls": int(row[4 * i]),
            "distinct": int(row[4 * i + 1]),
            "min": plain(row[4 * i + 2]),
            "max": plain(row[4 * i + 3]),
        }
        for i, name in enumerate(columns)
    }


def _no_examples() -> dict[str, list[dict[str, Any]]]:
    return {"added": [], "removed": [], "changed": []}
