"""A syrupy extension: one readable YAML file per snapshot, and diffs told in words."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

FORMAT_VERSION = 1
HEADER = f"# pytest-dbt-assets snapshot, format {FORMAT_VERSION}\n"


def to_plain(data: Any) -> Any:
    """Plain, sorted data: graphs and materializations become dicts, sets sorted lists.

    Lists keep their order (callers sort them); dict keys are sorted when rendered.
    """
    if hasattr(data, "to_data"):
        return to_plain(data.to_data())
    if hasattr(data, "summary") and callable(data.summary):
        return to_plain(data.summary())
    if isinstance(data, Mapping):
        return {str(key): to_plain(value) for key, value in data.items()}
    if isinstance(data, (set, frozenset)):
        return sorted(to_plain(item) for item in data)
    if isinstance(data, (list, tuple)):
        return [to_plain(item) for item in data]
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    raise TypeError(
        f"dbt_assets_snapshot cannot serialize a {type(data).__name__}: give it the asset graph, "
        "a Materialization (or its summary()), or plain dicts, lists, strings and numbers."
    )


def render(data: Any) -> str:
    """YAML with sorted keys, block style, no line folding: stable across runs and machines."""
    body = yaml.safe_dump(
        to_plain(data), sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000
    )
    return HEADER + body


def describe_changes(old: Any, new: Any) -> list[str]:
    """One line per semantic change between two snapshot documents (graph or summary)."""
    lines: list[str] = []
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return lines
    old_assets = old.get("assets") or {}
    new_assets = new.get("assets") or {}
    if isinstance(old_assets, Mapping) and isinstance(new_assets, Mapping):
        for key in sorted(set(old_assets) - set(new_assets)):
            lines.append(f"asset removed: {key}")
        for key in sorted(set(new_assets) - set(old_assets)):
            lines.append(f"asset added: {key}")
        for key in sorted(set(old_assets) & set(new_assets)):
            lines.extend(_asset_changes(key, old_assets[key] or {}, new_assets[key] or {}))
    old_checks, new_checks = old.get("checks") or {}, new.get("checks") or {}
    if isinstance(old_checks, Mapping) and isinstance(new_checks, Mapping):
        for name in sorted(set(old_checks) | set(new_checks)):
            before, after = old_checks.get(name), new_checks.get(name)
            if before != after:
                lines.append(f"check {name}: {before or 'absent'} -> {after or 'absent'}")
    if old.get("success") != new.get("success") and "success" in new:
        lines.append(f"success: {old.get('success')} -> {new.get('success')}")
    return lines


def _asset_changes(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    old_deps, new_deps = set(old.get("deps") or []), set(new.get("deps") or [])
    for dep in sorted(old_deps - new_deps):
        yield f"dependency removed: {key} -> {dep}"
    for dep in sorted(new_deps - old_deps):
        yield f"dependency added: {key} -> {dep}"
    if old.get("group") != new.get("group"):
        yield f"group changed: {key} {old.get('group')} -> {new.get('group')}"
    old_checks, new_checks = set(old.get("checks") or []), set(new.get("checks") or [])
    for name in sorted(old_checks - new_checks):
        yield f"check removed: {key} {name}"
    for name in sorted(new_checks - old_checks):
        yield f"check added: {key} {name}"
    before, after = old.get("rows"), new.get("rows")
    if before != after:
        if isinstance(before, int) and isinstance(after, int) and before:
            yield f"row count {key}: {before} -> {after} ({(after - before) / before:+.1%})"
        else:
            yield f"row count {key}: {before} -> {after}"
    old_columns, new_columns = old.get("columns") or {}, new.get("columns") or {}
    for column in sorted(set(old_columns) - set(new_columns)):
        yield f"column removed: {key}.{column}"
    for column in sorted(set(new_columns) - set(old_columns)):
        yield f"column added: {key}.{column} {new_columns[column]}"
    for column in sorted(set(old_columns) & set(new_columns)):
        if old_columns[column] != new_columns[column]:
            yield f"column type changed: {key}.{column} {old_columns[column]} -> {new_columns[column]}"


def _load(text: Any) -> Any:
    try:
        return yaml.safe_load(str(text))
    except yaml.YAMLError:
        return None


class DbtAssetsSnapshotExtension(SingleFileSnapshotExtension):
    """One ``.yaml`` file per snapshot under ``__snapshots__/<test file>/``.

    The file starts with a format-version line, so a future format change invalidates old
    files on purpose. A mismatch starts with one line per semantic change, then the diff.
    """

    file_extension = "yaml"
    _write_mode = WriteMode.TEXT

    def serialize(self, data: Any, **_: Any) -> str:
        return render(data)

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        changes = describe_changes(_load(snapshot_data), _load(serialized_data))
        if changes:
            yield "What changed:"
            for line in changes:
                yield f"  {line}"
            yield ""
        yield from super().diff_lines(serialized_data, snapshot_data)
