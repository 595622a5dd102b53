"""A syrupy extension: one readable YAML file per snapshot, and diffs told in words."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension

from pytest_dbt_assets.compat import syrupy as syrupy_compat
from pytest_dbt_assets.errors import SnapshotDataError
from pytest_dbt_assets.mermaid import flowchart
from pytest_dbt_assets.words import plural

FORMAT_VERSION = 1
HEADER = f"# pytest-dbt-assets snapshot, format {FORMAT_VERSION}\n"


@dataclass(frozen=True)
class RowTolerance:
    """How far a row count may move from its snapshot and still match.

    A count matches when it is within ``absolute`` rows *or* within ``relative`` (a
    fraction: 0.1 is 10 %) of the stored count. ``assets`` maps keys or glob patterns
    (``"acme/staging/*"``) to their own tolerance; an exact key wins over a pattern.
    Exact by default.
    """

    relative: float | None = None
    absolute: int | None = None
    assets: tuple[tuple[str, RowTolerance], ...] = field(default=())

    @classmethod
    def build(
        cls,
        relative: float | None = None,
        absolute: int | None = None,
        assets: Mapping[str, Any] | None = None,
    ) -> RowTolerance:
        """From plain values; ``assets`` values are dicts of ``relative`` / ``absolute``."""
        per_asset = tuple(
            (pattern, value if isinstance(value, RowTolerance) else cls.build(**value))
            for pattern, value in (assets or {}).items()
        )
        return cls(relative=relative, absolute=absolute, assets=per_asset)

    def for_asset(self, key: str) -> RowTolerance:
        for pattern, tolerance in self.assets:
            if pattern == key:
                return tolerance
        for pattern, tolerance in self.assets:
            if fnmatch.fnmatchcase(key, pattern):
                return tolerance
        return self

    def allows(self, key: str, old: Any, new: Any) -> bool:
        if old == new:
            return True
        if not isinstance(old, int) or not isinstance(new, int):
            return False
        tolerance = self.for_asset(key)
        moved = abs(new - old)
        within_absolute = tolerance.absolute is not None and moved <= tolerance.absolute
        within_relative = tolerance.relative is not None and old != 0 and moved / abs(old) <= tolerance.relative
        return within_absolute or within_relative


def within_tolerance(old: Any, new: Any, tolerance: RowTolerance, asset: str | None = None) -> bool:
    """True when ``new`` equals ``old`` except for row counts that ``tolerance`` allows."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        if set(old) != set(new):
            return False
        for name in old:
            if asset is not None and name == "rows":
                if not tolerance.allows(asset, old[name], new[name]):
                    return False
            elif name == "assets" and isinstance(old[name], Mapping) and isinstance(new[name], Mapping):
                if set(old[name]) != set(new[name]) or not all(
                    within_tolerance(old[name][key], new[name][key], tolerance, key) for key in old[name]
                ):
                    return False
            elif not within_tolerance(old[name], new[name], tolerance):
                return False
        return True
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(within_tolerance(a, b, tolerance) for a, b in zip(old, new))
    return bool(old == new)


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
    raise SnapshotDataError(
        f"dbt_assets_snapshot cannot serialize a {type(data).__name__}: give it the asset graph, "
        "a Materialization (or its summary()), or plain dicts, lists, strings and numbers."
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (dbt error messages) as ``|`` blocks, readable in a diff."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render(data: Any) -> str:
    """YAML with sorted keys, block style, no line folding: stable across runs and machines."""
    body = yaml.dump(
        to_plain(data), Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000
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
    lines.extend(_selection_changes(old, new))
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


def _selection_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    """Lines for jobs and schedules added, removed, or selecting other assets.

    A selection that becomes empty gets its own line: a translator change that leaves a
    schedule selecting nothing makes its runs do nothing, silently, in production.
    """
    for kind in ("job", "schedule"):
        before, after = old.get(kind + "s") or {}, new.get(kind + "s") or {}
        if not isinstance(before, Mapping) or not isinstance(after, Mapping):
            continue
        for name in sorted(set(before) - set(after)):
            yield f"{kind} removed: {name}"
        for name in sorted(set(after) - set(before)):
            yield f"{kind} added: {name} ({_describe_target(kind, after[name])})"
        for name in sorted(set(before) & set(after)):
            old_entry, new_entry = _as_entry(before[name]), _as_entry(after[name])
            for field_name in ("job", "cron"):
                if old_entry.get(field_name) != new_entry.get(field_name):
                    yield (
                        f"{kind} {name}: {field_name} {old_entry.get(field_name) or 'none'} -> "
                        f"{new_entry.get(field_name) or 'none'}"
                    )
            change = _assets_change(old_entry["assets"], new_entry["assets"])
            if change:
                yield f"{kind} {name}: {change}"


def _as_entry(value: Any) -> dict[str, Any]:
    """A job (a list of keys) or a schedule (a dict with ``assets``) as one shape."""
    if isinstance(value, Mapping):
        return {**value, "assets": list(value.get("assets") or [])}
    return {"assets": list(value or [])}


def _describe_target(kind: str, value: Any) -> str:
    entry = _as_entry(value)
    parts = [f"job {entry['job']}"] if entry.get("job") else []
    if entry.get("cron"):
        parts.append(f"cron {entry['cron']}")
    parts.append(f"selects {_count(entry['assets'])}" if entry["assets"] else "selects NO assets")
    return ", ".join(parts)


def _assets_change(before: list[str], after: list[str]) -> str | None:
    gone, came = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    if not gone and not came:
        return None
    if before and not after:
        return f"now selects NO assets (it selected {_count(before)}: {_listing(before)}); its runs would do nothing"
    if not before:
        return f"now selects {_count(after)}: {_listing(after)}"
    parts = []
    if came:
        parts.append(f"now also selects {_count(came)}: {_listing(came)}")
    if gone:
        parts.append(f"no longer selects {_count(gone)}: {_listing(gone)}")
    return "; ".join(parts)


def _count(keys: list[str]) -> str:
    return plural(len(keys), "asset")


def _listing(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown}, ... ({len(keys) - limit} more)"


def _load(text: Any) -> Any:
    try:
        return yaml.safe_load(str(text))
    except yaml.YAMLError:
        return None


class DbtAssetsSnapshotExtension(SingleFileSnapshotExtension):
    """One ``.yaml`` file per snapshot under ``__snapshots__/<test file>/``.

    The file starts with a format-version line, so a future format change invalidates old
    files on purpose. A mismatch starts with one line per semantic change, then the diff.
    Subclasses made by :func:`snapshot_extension` carry a row-count tolerance and whether
    to write each graph's Mermaid flowchart next to its snapshot.
    """

    file_extension = "yaml"
    _write_mode = syrupy_compat.text_write_mode()
    row_tolerance: RowTolerance | None = None
    write_mermaid: bool = False

    def serialize(self, data: Any, **_: Any) -> str:
        return render(data)

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        if serialized_data == snapshot_data:
            return True
        if self.row_tolerance is None or snapshot_data is None:
            return False
        if not str(snapshot_data).startswith(HEADER):
            return False  # another format version: never trusted
        return within_tolerance(_load(snapshot_data), _load(serialized_data), self.row_tolerance)

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        changes = describe_changes(_load(snapshot_data), _load(serialized_data))
        if snapshot_data is not None and not str(snapshot_data).startswith(HEADER):
            changes.insert(0, f"snapshot file format changed (now format {FORMAT_VERSION}): run --snapshot-update")
        if changes:
            yield "What changed:"
            for line in changes:
                yield f"  {line}"
            yield ""
        yield from super().diff_lines(serialized_data, snapshot_data)

    @classmethod
    def write_snapshot_collection(cls, *, snapshot_collection: Any, name_order: Any = None) -> None:
        super().write_snapshot_collection(snapshot_collection=snapshot_collection, name_order=name_order)
        if cls.write_mermaid:
            data = _load(next(iter(snapshot_collection)).data)
            chart = graph_mermaid(data)
            if chart is not None:
                title = Path(snapshot_collection.location).stem
                _mermaid_path(snapshot_collection.location).write_text(
                    f"{MERMAID_MARK}\n# {title}\n\n```mermaid\n{chart}```\n", encoding="utf-8"
                )

    def delete_snapshots(self, *, snapshot_location: str, snapshot_names: set[str]) -> None:
        super().delete_snapshots(snapshot_location=snapshot_location, snapshot_names=snapshot_names)
        _mermaid_path(snapshot_location).unlink(missing_ok=True)


MERMAID_MARK = "<!-- pytest-dbt-assets: asset graph of the .yaml snapshot beside this file -->"


def _mermaid_path(snapshot_location: str) -> Path:
    return Path(snapshot_location).with_suffix(".md")


def remove_orphan_pictures(root: Path, snapshot_dirname: str = "__snapshots__") -> list[Path]:
    """Delete the plugin's Mermaid ``.md`` files whose ``.yaml`` snapshot is gone.

    syrupy deletes unused snapshots with whichever extension discovers them, which does not
    know about the pictures; this runs after it when snapshots are updated.
    """
    removed = []
    for picture in sorted(root.rglob(f"{snapshot_dirname}/**/*.md")):
        if picture.with_suffix(".yaml").exists():
            continue
        with picture.open(encoding="utf-8", errors="replace") as handle:
            if handle.readline().rstrip("\n") != MERMAID_MARK:
                continue
        picture.unlink()
        removed.append(picture)
    return removed


def graph_mermaid(data: Any) -> str | None:
    """The Mermaid flowchart of a graph snapshot document, or None for other documents."""
    assets = data.get("assets") if isinstance(data, Mapping) else None
    if not isinstance(assets, Mapping) or not all(
        isinstance(entry, Mapping) and "deps" in entry for entry in assets.values()
    ):
        return None
    return flowchart(
        {key: list(entry.get("deps") or []) for key, entry in assets.items()},
        groups={key: entry.get("group") or "" for key, entry in assets.items()},
    )


@functools.cache
def snapshot_extension(
    row_tolerance: RowTolerance | None = None, write_mermaid: bool = False
) -> type[DbtAssetsSnapshotExtension]:
    """The extension class for these settings (one class per distinct setting)."""
    if row_tolerance is None and not write_mermaid:
        return DbtAssetsSnapshotExtension
    return type(
        "DbtAssetsSnapshotExtension",
        (DbtAssetsSnapshotExtension,),
        {"row_tolerance": row_tolerance, "write_mermaid": write_mermaid},
    )


def row_tolerance(
    relative: float | None = None, absolute: int | None = None, assets: Mapping[str, Any] | None = None
) -> type[DbtAssetsSnapshotExtension]:
    """A snapshot option: ``assert summary == dbt_assets_snapshot(extension_class=row_tolerance(relative=0.1))``.

    Example:
        >>> row_tolerance(absolute=2, assets={"acme/marts/events": {"relative": 0.25}})
    """
    return snapshot_extension(RowTolerance.build(relative, absolute, assets))


class DbtAssetsSnapshotAssertion(SnapshotAssertion):
    """syrupy's ``SnapshotAssertion`` with a one-line repr: syrupy's is the last serialized
    snapshot, which pytest prints, cut mid-word, as the fixture's value in a failed test's
    traceback header."""

    def __repr__(self) -> str:
        return f"<dbt_assets_snapshot of {self.test_location.snapshot_name}, {self.num_executions} compared>"


def short_repr_assertion(assertion: SnapshotAssertion) -> SnapshotAssertion:
    """``assertion`` as a :class:`DbtAssetsSnapshotAssertion` (the same object: syrupy keeps
    its class for the copies ``use_extension`` and ``with_defaults`` make)."""
    assertion.__class__ = DbtAssetsSnapshotAssertion
    return assertion
