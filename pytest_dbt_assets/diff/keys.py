"""A model's unique key, read from what the dbt project already declares about it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def unique_key_columns(manifest: Mapping[str, Any], unique_id: str) -> list[str]:
    """The columns that identify a row of ``unique_id``'s relation, for a keyed data diff.

    Taken, in this order of preference, from:

    1. a ``unique`` generic test attached to the node (the key: its ``column_name``); of
       several, the alphabetically first column;
    2. a ``unique_combination_of_columns`` test (dbt_utils) attached to it: of several, the
       one with the fewest columns, then the alphabetically first list;
    3. a contract's ``primary_key`` constraint: the model-level one, else the columns whose
       own constraints say ``primary_key`` (in the order the YAML declares them).

    A test with a ``where`` config only vouches for some rows, and a ``column_name`` that is an
    expression (``lower(email)``) names no column: neither is used. A constraint counts
    whether or not the contract is enforced: a key that turns out not to be unique only makes
    the diff fall back to whole rows.

    Args:
        manifest: the parsed ``manifest.json``.
        unique_id: the node, e.g. ``"model.jaffle_shop.customers"``.

    Returns:
        The key columns, or ``[]`` when the project declares none (compare whole rows).

    Example:
        >>> unique_key_columns(manifest, "model.jaffle_shop.customers")
        ['customer_id']
    """
    singles: list[str] = []
    combinations: list[list[str]] = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "test" or not _attached_to(node, unique_id):
            continue
        if (node.get("config") or {}).get("where"):
            continue
        metadata = node.get("test_metadata") or {}
        kwargs = metadata.get("kwargs") or {}
        if metadata.get("name") == "unique":
            column = _column(kwargs.get("column_name"))
            if column is not None:
                singles.append(column)
        elif metadata.get("name") == "unique_combination_of_columns":
            columns = [_column(c) for c in kwargs.get("combination_of_columns") or []]
            if columns and all(c is not None for c in columns):
                combinations.append([c for c in columns if c is not None])
    if singles:
        return [min(singles)]
    if combinations:
        return min(combinations, key=lambda columns: (len(columns), columns))
    return _primary_key(manifest.get("nodes", {}).get(unique_id) or {})


def _attached_to(test: Mapping[str, Any], unique_id: str) -> bool:
    """Whether ``test`` tests ``unique_id`` (``attached_node`` since dbt 1.5, else its only dependency)."""
    attached = test.get("attached_node")
    if attached is not None:
        return bool(attached == unique_id)
    return bool((test.get("depends_on") or {}).get("nodes") == [unique_id])


def _primary_key(node: Mapping[str, Any]) -> list[str]:
    """The node's ``primary_key`` constraint columns: model-level first, else column-level."""
    for constraint in node.get("constraints") or []:
        if constraint.get("type") == "primary_key":
            columns = [_column(c) for c in constraint.get("columns") or []]
            if columns and all(c is not None for c in columns):
                return [c for c in columns if c is not None]
    return [
        name
        for name, column in (node.get("columns") or {}).items()
        if any(c.get("type") == "primary_key" for c in column.get("constraints") or [])
    ]


def _column(text: object) -> str | None:
    """A column name from a test argument: a plain identifier, or a double-quoted one
    (``quote: true``); ``None`` for an expression."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text if _IDENTIFIER.fullmatch(text) else None
