"""Statements dbt-snowflake's own macros write that the emulator cannot run as written, made
into their Snowflake meaning before fakesnow translates them.

Only what dbt-snowflake itself writes is rewritten (incremental models and snapshots), never
the user's model SQL: where fakesnow differs on the user's SQL, the failure says so (see
:func:`emulator_hint`).

- ``create temporary view|table DB.SCHEMA.X``: DuckDB keeps temporary objects in a catalog
  of its own, refuses a qualified name and fakesnow cannot describe them. The object is made
  an ordinary one where Snowflake would have it, and dropped when the connection closes
  (:func:`drop_temporary`), as Snowflake drops it with the session.
- ``merge into T using DB.S.X as SRC ... insert (c) values (c)``: Snowflake reads unqualified
  values from the source; fakesnow needs them qualified, and the source named by its alias.

sqlglot (the snowflake extra's) is imported inside the functions: this module is imported by
the Snowflake backend, which says in words when the extra is missing.
"""

from __future__ import annotations

import re
from typing import Any

# Where the temporary objects a connection made are kept, on fakesnow's connection:
# (kind, name as written) for `drop <kind> if exists <name>`.
_TEMPORARY = "_pytest_dbt_assets_temporary"


def rewrite(expression: Any, connection: Any) -> Any:
    """``expression`` (sqlglot) as the emulator can run it, for ``connection`` (fakesnow's)."""
    from sqlglot import exp

    if isinstance(expression, exp.Create) and (temporary := _temporary_property(expression)) is not None:
        temporary.pop()
        made: set[tuple[str, str]] = getattr(connection, _TEMPORARY, None) or set()
        made.add((str(expression.args.get("kind") or "table").lower(), expression.this.sql(dialect="snowflake")))
        setattr(connection, _TEMPORARY, made)
    if isinstance(expression, exp.Merge):
        _source_by_alias(expression)
        _qualify_inserted_values(expression)
    return expression


def _temporary_property(create: Any) -> Any:
    """The ``TEMPORARY`` of a ``create`` statement with a qualified name, or None."""
    from sqlglot import exp

    properties = create.args.get("properties")
    table = create.this
    if (
        properties is None
        or not isinstance(table, exp.Table)
        or not (table.args.get("db") or table.args.get("catalog"))
    ):
        return None
    return next((each for each in properties.expressions if isinstance(each, exp.TemporaryProperty)), None)


def drop_temporary(connection: Any) -> None:
    """Drop what ``connection`` made as temporary (before it closes)."""
    for kind, name in sorted(getattr(connection, _TEMPORARY, None) or ()):
        connection.cursor().execute(f"drop {kind} if exists {name}")
    setattr(connection, _TEMPORARY, set())


def _source_by_alias(merge: Any) -> None:
    """``using DB.S.X as SRC`` becomes ``using (select * from DB.S.X) as SRC``: fakesnow tells
    the source's columns by the table's name, where dbt's statements name them by the alias."""
    from sqlglot import exp

    source = merge.args.get("using")
    if not isinstance(source, exp.Table) or not source.alias:
        return
    alias = source.alias
    table = source.copy()
    table.set("alias", None)
    merge.set("using", exp.select("*").from_(table).subquery(alias))


def _qualify_inserted_values(merge: Any) -> None:
    from sqlglot import exp

    source = merge.args.get("using")
    alias = source.alias_or_name if source is not None else None
    whens = merge.args.get("whens")
    if not alias or whens is None:
        return
    for when in whens.expressions:
        insert = when.args.get("then")
        values = insert.expression if isinstance(insert, exp.Insert) else None
        if not isinstance(values, exp.Tuple):
            continue
        for column in values.find_all(exp.Column):
            if not column.table:
                column.set("table", exp.to_identifier(alias))


_MISSING = re.compile(r"Catalog Error: (?:Table|View|Table Function) with name (\S+) does not exist!")


def snowflake_wording(message: str) -> str:
    """An error of DuckDB's under fakesnow in the words Snowflake uses, which code under test
    may look for (dagster-snowflake's I/O manager ignores "does not exist or not authorized"
    when it clears a table that is not there yet); DuckDB's text follows it."""
    found = _MISSING.search(message)
    if found is None or "not authorized" in message:
        return message
    name = found.group(1).strip('"')
    return f"SQL compilation error: Object '{name}' does not exist or not authorized. ({message})"


# What fakesnow (or DuckDB under it) says when it cannot run a statement, as opposed to an
# error in the user's SQL that Snowflake would report too.
_EMULATOR_SIGNS = (
    "not implemented",
    "notimplementederror",
    "unsupported",
    "function with name",  # DuckDB's "Scalar/Aggregate/Table Function with name X does not exist"
    "parser error",
    "binder error: combining",
)


def emulator_hint(text: str) -> str | None:
    """A sentence for a dbt or Python failure whose text looks like the emulator's limit."""
    lowered = text.lower()
    if not any(sign in lowered for sign in _EMULATOR_SIGNS):
        return None
    return (
        "This may be a limit of fakesnow, the Snowflake emulator the plugin runs your project on, not an "
        "error in your SQL: see docs/snowflake-differences.md for the known ones and their rewrites. If the "
        "SQL is right on Snowflake, give the emulator a rewrite behind `{% if target.name == 'dbt_assets' %}` "
        "(the plugin's target) or leave the model out of the test's selection."
    )
