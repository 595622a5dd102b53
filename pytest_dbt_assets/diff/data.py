"""The data diff: each asset's relation in the working tree compared with the base revision's.

The base revision's selection is built in another process, which exports each relation to
Parquet with :func:`export_relation`; :func:`diff_relation` then compares a relation of the
test's own database with that file, in DuckDB SQL on the caller's connection. The results
are plain data (:class:`TableDiff`, :class:`DataDiff`), for asserts, snapshots and reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pytest_dbt_assets.database import sql_string
from pytest_dbt_assets.diff import rows
from pytest_dbt_assets.diff.keys import unique_key_columns
from pytest_dbt_assets.errors import UnknownAssetKeyError
from pytest_dbt_assets.words import plural

__all__ = ["DataDiff", "TableDiff", "diff_relation", "export_relation", "unique_key_columns"]

# The commit a base names in parentheses ("origin/main (1a2b3c4)"): left out of snapshots.
_SHA = re.compile(r"\s*\([0-9a-f]{4,40}\)$")


def export_relation(con: duckdb.DuckDBPyConnection, relation: str, path: Path) -> dict[str, str]:
    """Write ``relation`` to a Parquet file, for a diff in another process.

    Args:
        con: a connection that can read ``relation``.
        relation: SQL naming the relation (``main.customers``, ``"Raw"."Orders"``), used as given.
        path: the Parquet file to write.

    Returns:
        ``{column: DuckDB type}`` in column order, as ``DESCRIBE`` reports them: Parquet
        cannot hold every type (an ENUM comes back as VARCHAR), so the diff takes the types
        from here.

    Example:
        >>> export_relation(con, "main.customers", base_dir / "customers.parquet")
        {'customer_id': 'INTEGER', 'first_order': 'DATE', 'lifetime_value': 'DECIMAL(18,2)'}
    """
    con.execute(f"COPY (SELECT * FROM {relation}) TO {sql_string(path)} (FORMAT parquet)")
    return rows.columns_of(con, relation)


@dataclass(frozen=True)
class TableDiff:
    """One asset's relation in the working tree against the base revision.

    Rows are compared on the columns both sides have; see :func:`diff_relation`. Every value
    (counts, examples, profiles) is JSON-able: dates, times and decimals are ISO strings.

    Attributes:
        key: the asset key (user string).
        key_columns: the columns rows were matched by; ``[]``: compared as whole rows.
        rows_base: ``count(*)`` at base; ``None``: the asset did not exist there.
        rows_current: ``count(*)`` now; ``None``: the working tree removed it.
        added: rows only in current (by key, or whole rows).
        removed: rows only in base.
        changed: keyed only: rows of the same key in which some common column differs.
        changed_columns: sorted, the common columns that differ in some changed row.
        examples: ``"added"``, ``"removed"``: the first rows as dicts (sorted by key, else by
            all columns); ``"changed"``: ``{"key": {...}, "before": {...}, "after": {...}}``
            holding only the columns that differ.
        columns_added: name -> type, columns only in current.
        columns_removed: name -> type, columns only in base.
        columns_retyped: name -> ``[base type, current type]``.
        profiles: only when asked: column -> ``{"base": {...}, "current": {...}}``, each side
            (where it has the column) with ``nulls``, ``distinct``, ``min``, ``max``.
        note: why rows were compared whole although a key was given (a duplicate key).
    """

    key: str
    key_columns: list[str]
    rows_base: int | None
    rows_current: int | None
    added: int = 0
    removed: int = 0
    changed: int = 0
    changed_columns: list[str] = field(default_factory=list)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    columns_added: dict[str, str] = field(default_factory=dict)
    columns_removed: dict[str, str] = field(default_factory=dict)
    columns_retyped: dict[str, list[str]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        """``"new"``, ``"removed"``, ``"changed"`` or ``"unchanged"``."""
        if self.rows_base is None:
            return "new"
        if self.rows_current is None:
            return "removed"
        return "unchanged" if self.unchanged() else "changed"

    @property
    def breaking(self) -> bool:
        """Whether a reader of the base relation may break or see other data: a column removed
        or retyped, rows removed or changed, or the whole asset removed."""
        return bool(
            self.columns_removed
            or self.columns_retyped
            or self.removed
            or self.changed
            or (self.rows_current is None and self.rows_base is not None)
        )

    def unchanged(self) -> bool:
        """Whether the asset exists on both sides with the same columns, types and rows."""
        return (
            self.rows_base is not None
            and self.rows_current is not None
            and not (self.added or self.removed or self.changed)
            and not (self.columns_added or self.columns_removed or self.columns_retyped)
        )

    def summary(self) -> dict[str, Any]:
        """Plain sorted data for a snapshot: the status, the row counts, and only the parts
        that differ (zero counts and empty lists are left out)."""
        data: dict[str, Any] = {"status": self.status}
        data["rows"] = {
            side: count
            for side, count in (("base", self.rows_base), ("current", self.rows_current))
            if count is not None
        }
        if self.status != "unchanged":
            data["breaking"] = self.breaking
            data.update({name: n for name in ("added", "removed", "changed") if (n := getattr(self, name))})
            if self.changed_columns:
                data["changed_columns"] = list(self.changed_columns)
            if examples := {kind: rows_ for kind, rows_ in self.examples.items() if rows_}:
                data["examples"] = examples
            columns = {"added": self.columns_added, "removed": self.columns_removed, "retyped": self.columns_retyped}
            if columns := {change: found for change, found in columns.items() if found}:
                data["columns"] = columns
        if self.key_columns and self.status != "unchanged":
            data["key_columns"] = list(self.key_columns)
        if self.note:
            data["note"] = self.note
        if self.profiles is not None:
            data["profiles"] = self.profiles
        return _sorted(data)

    def describe(self) -> str:
        """One line in words, e.g. ``"customers: 3 rows changed (lifetime_value), 1 row added;
        column first_order: date -> timestamp"``; a change that breaks nothing ends with
        ``(non-breaking)``."""
        note = f"; {self.note}" if self.note else ""
        if self.rows_base is None:
            return f"{self.key}: new asset ({plural(self.rows_current or 0, 'row')}){note}"
        if self.rows_current is None:
            return f"{self.key}: removed (was {plural(self.rows_base, 'row')}){note}"
        if self.unchanged():
            return f"{self.key}: unchanged ({plural(self.rows_current, 'row')}){note}"
        row_parts = []
        if self.changed:
            row_parts.append(f"{plural(self.changed, 'row')} changed ({', '.join(self.changed_columns)})")
        if self.added:
            row_parts.append(f"{plural(self.added, 'row')} added")
        if self.removed:
            row_parts.append(f"{plural(self.removed, 'row')} removed")
        column_parts = [f"column {name} added ({type_.lower()})" for name, type_ in sorted(self.columns_added.items())]
        column_parts += [
            f"column {name} removed ({type_.lower()})" for name, type_ in sorted(self.columns_removed.items())
        ]
        column_parts += [
            f"column {name}: {old.lower()} -> {new.lower()}"
            for name, (old, new) in sorted(self.columns_retyped.items())
        ]
        if row_parts:
            body = ", ".join(row_parts) + ("; " + ", ".join(column_parts) if column_parts else "")
        else:
            body = ", ".join(column_parts) + ", no rows changed"
        return f"{self.key}: {body}{note}{'' if self.breaking else ' (non-breaking)'}"


@dataclass(frozen=True)
class DataDiff:
    """The data diff of a selection: one :class:`TableDiff` per asset, sorted by key.

    Attributes:
        base: the base revision as the user named it and its commit, e.g.
            ``"origin/main (1a2b3c4)"``.
        tables: asset key -> its diff.
    """

    base: str
    tables: dict[str, TableDiff]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", dict(sorted(self.tables.items())))

    def summary(self) -> dict[str, Any]:
        """Plain sorted data for a snapshot: the base without its commit (which moves with every
        push) and each asset's :meth:`TableDiff.summary`."""
        return {"assets": {key: table.summary() for key, table in self.tables.items()}, "base": _SHA.sub("", self.base)}

    def describe(self) -> list[str]:
        """One line per asset, in key order (unchanged ones too, so every line keeps its place)."""
        return [table.describe() for table in self.tables.values()]

    def changed(self) -> dict[str, TableDiff]:
        """The assets that are not :meth:`TableDiff.unchanged` (new and removed ones included)."""
        return {key: table for key, table in self.tables.items() if not table.unchanged()}

    def __getitem__(self, key: str) -> TableDiff:
        try:
            return self.tables[key]
        except KeyError:
            known = ", ".join(self.tables) or "none"
            raise UnknownAssetKeyError(f"no data diff for asset {key!r}; the diff compared: {known}") from None

    def __str__(self) -> str:
        return "\n".join(self.describe())


def diff_relation(
    con: duckdb.DuckDBPyConnection,
    key: str,
    current: str | None,
    base_parquet: Path | None,
    base_columns: Mapping[str, str] | None,
    key_columns: Sequence[str],
    *,
    examples: int = 3,
    profile: bool = False,
) -> TableDiff:
    """Compare one asset's current relation with its base Parquet, in SQL on ``con``.

    Rows are compared on the columns both sides have. A column whose type changed is compared
    after casting the base value to the current type with ``TRY_CAST``: a base ``DATE``
    equals a ``TIMESTAMP`` at midnight of that day, and a value that does not cast counts as
    a difference. Values compare NULL-safe (``IS DISTINCT FROM``): NULL to a value is a change.

    With ``key_columns``, rows are matched by key: added (key only in current), removed (key
    only in base), changed (same key, some other common column differs). If a key repeats
    on a side, or a key column is not on both sides, the rows are compared whole instead
    and ``note`` says why. Without a key, rows are compared as multisets (``EXCEPT ALL``
    both ways), and nothing counts as changed.

    All of it runs in SQL (the base through ``read_parquet``); Python receives counts and at
    most ``examples`` rows of each kind, never a table.

    Args:
        con: a DuckDB connection that reads ``current`` and the Parquet file.
        key: the asset key, as the user writes it.
        current: SQL naming the current relation; ``None`` if the working tree removed it.
        base_parquet: the base relation exported by :func:`export_relation`; ``None`` if the
            asset did not exist at base.
        base_columns: what :func:`export_relation` returned; ``None``: the Parquet's own types.
        key_columns: the unique key (see :func:`unique_key_columns`), ``[]`` for whole rows.
        examples: at most this many example rows of each kind.
        profile: also profile each column on both sides (nulls, distinct, min, max).

    Example:
        >>> diff = diff_relation(con, "acme/marts/customers", "main.customers", base_dir / "customers.parquet",
        ...                      base_types, unique_key_columns(manifest, "model.acme.customers"))
        >>> diff.describe()
        'acme/marts/customers: 3 rows changed (lifetime_value), 1 row added'
    """
    if current is None and base_parquet is None:
        raise ValueError(f"diff_relation({key!r}): neither a current relation nor a base Parquet file")
    base_source = rows.parquet_source(base_parquet) if base_parquet is not None else None
    current_types = rows.columns_of(con, current) if current is not None else {}
    parquet_types = rows.columns_of(con, base_source) if base_source is not None else {}
    base_types = dict(base_columns) if base_columns is not None else parquet_types
    keys = list(key_columns)

    if current is None:
        assert base_source is not None
        return _one_side(con, key, "base", base_source, parquet_types, keys, examples, profile)
    if base_source is None:
        return _one_side(con, key, "current", current, current_types, keys, examples, profile)

    common = [name for name in current_types if name in base_types]
    sides = rows.Sides(
        base=base_source,
        current=current,
        columns=common,
        casts={name: current_types[name] for name in common if parquet_types.get(name) != current_types[name]},
    )
    # The manifest names a key as the model's YAML does; Snowflake folds unquoted names to upper case.
    folded = {name.lower(): name for name in common}
    keys = [name if name in common else folded.get(name.lower(), name) for name in keys]
    note = None
    if keys:
        missing = [k for k in keys if k not in common]
        duplicated = [side for side in ("b", "c") if not missing and rows.has_duplicate_keys(con, sides, keys, side)]
        if missing:
            note = f"key column {', '.join(missing)} not on both sides: compared as whole rows"
        elif duplicated:
            where = " and ".join({"b": "base", "c": "current"}[side] for side in duplicated)
            note = f"duplicate key ({', '.join(keys)}) in {where}: compared as whole rows"
    if keys and note is None:
        changes = rows.keyed_changes(con, sides, keys, examples)
    else:
        changes = rows.whole_row_changes(con, sides, examples)
    return TableDiff(
        key=key,
        key_columns=keys if note is None else [],
        rows_base=rows.count_rows(con, base_source),
        rows_current=rows.count_rows(con, current),
        added=changes.added,
        removed=changes.removed,
        changed=changes.changed,
        changed_columns=changes.changed_columns,
        examples=changes.examples,
        columns_added={name: current_types[name] for name in sorted(current_types) if name not in base_types},
        columns_removed={name: base_types[name] for name in sorted(base_types) if name not in current_types},
        columns_retyped={
            name: [base_types[name], current_types[name]]
            for name in sorted(common)
            if base_types[name] != current_types[name]
        },
        profiles=_profiles(con, {"base": (base_source, parquet_types), "current": (current, current_types)})
        if profile
        else None,
        note=note,
    )


def _one_side(
    con: duckdb.DuckDBPyConnection,
    key: str,
    side: str,
    source: str,
    types: Mapping[str, str],
    keys: list[str],
    examples: int,
    profile: bool,
) -> TableDiff:
    """The diff of an asset only ``side`` (``"base"``: removed, ``"current"``: new) has: all its
    rows count as removed or added, with the first rows as examples."""
    count = rows.count_rows(con, source)
    first = rows.first_rows(con, source, keys if set(keys) <= set(types) else [], examples)
    new = side == "current"
    return TableDiff(
        key=key,
        key_columns=keys,
        rows_base=None if new else count,
        rows_current=count if new else None,
        added=count if new else 0,
        removed=0 if new else count,
        examples={"added": first if new else [], "removed": [] if new else first, "changed": []},
        profiles=_profiles(con, {side: (source, types)}) if profile else None,
    )


def _profiles(con: duckdb.DuckDBPyConnection, sides: Mapping[str, tuple[str, Mapping[str, str]]]) -> dict[str, Any]:
    """Column -> side -> its profile, for every column of each side (in its own type)."""
    found: dict[str, dict[str, Any]] = {}
    for side, (source, types) in sides.items():
        for column, stats in rows.profile(con, source, list(types)).items():
            found.setdefault(column, {})[side] = stats
    return dict(sorted(found.items()))


def _sorted(value: Any) -> Any:
    """``value`` with every dict's keys sorted, recursively (lists keep their order)."""
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
