"""The impact of a change on the asset graph: two graph exports (base revision, working tree)
in, which assets were added, removed, modified directly or reached downstream, out.

Pure data in and out (the export format is plain JSON), so it is unit-testable and the same
answer feeds ``dbt_asset_graph.diff()``, the CLI flag, test selection and the PR report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_dbt_assets.mermaid import flowchart

FACET_NAMES = {
    "sql": "SQL",
    "config": "YAML config",
    "macros": "macro",
    "seed": "seed data",
    "code_version": "Python code version",
    "python_code": "Python code",
    "spec": "translator output",
}
"""Display names of the export's facets, for words and reports."""

IMPACT_STYLES = {
    "added": "fill:#d3f9d8,stroke:#2b8a3e",
    "modified": "fill:#ffe8cc,stroke:#e8590c",
    "indirect": "fill:#fff3bf,stroke:#f59f00",
    "removed": "fill:#ffe3e3,stroke:#c92a2a,stroke-dasharray: 4 2",
    "context": "fill:#f1f3f5,stroke:#adb5bd",
}
"""Mermaid ``classDef`` styles of the impact picture."""


@dataclass(frozen=True)
class Impact:
    """What changed in the asset graph between a base revision and the working tree.

    Every key is a user string (``"acme/marts/customers"``), every list sorted. ``jobs`` and
    ``schedules`` hold only those whose selection (or cron) changed: ``{"added": keys,
    "removed": keys}``, and a job or schedule present at one side only is marked
    ``"job": ["added"]`` / ``"job": ["removed"]`` (``"schedule": [...]`` for schedules) with
    all its keys as added or removed. A schedule's changed cron or job is ``[base, current]``;
    a schedule at one side only shows its cron as ``[cron]``. A declared column change adds
    the reason ``"columns"`` to ``modified`` (it breaks readers even when no facet moved).

    ``subgraph_deps`` / ``subgraph_groups`` hold the picture of the impacted subgraph (touched
    keys and their direct parents); they are not part of :meth:`summary`.
    """

    base: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: dict[str, list[str]] = field(default_factory=dict)
    indirect: dict[str, list[str]] = field(default_factory=dict)
    breaking: dict[str, list[str]] = field(default_factory=dict)
    non_breaking: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    subgraph_deps: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)
    subgraph_groups: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def impacted(self) -> set[str]:
        """Keys present in the working tree that a test selection must run for again."""
        return set(self.added) | set(self.modified) | set(self.indirect)

    def touched(self) -> set[str]:
        """Impacted keys and the removed ones."""
        return self.impacted() | set(self.removed)

    def unchanged(self) -> bool:
        """True when nothing in the graph differs (assets, checks, jobs, schedules)."""
        return not self.summary()

    def summary(self) -> dict[str, Any]:
        """Plain sorted data for a syrupy snapshot; empty sections are left out."""
        sections: dict[str, Any] = {
            "added": sorted(self.added),
            "removed": sorted(self.removed),
            "modified": _sorted_lists(self.modified),
            "indirect": _sorted_lists(self.indirect),
            "breaking": _sorted_lists(self.breaking),
            "non_breaking": _sorted_lists(self.non_breaking),
            "checks": _sorted_lists(self.checks),
            "jobs": {name: _sorted_lists(change) for name, change in sorted(self.jobs.items())},
            "schedules": {name: dict(sorted(change.items())) for name, change in sorted(self.schedules.items())},
        }
        return {name: value for name, value in sections.items() if value}

    def describe(self) -> list[str]:
        """The impact in words, one line per fact; empty when nothing changed.

        Example: ``["modified: acme/staging/stg_orders (SQL)",
        "indirect: acme/marts/customers (via acme/staging/stg_orders)"]``.
        """
        lines = [f"added: {key}" for key in sorted(self.added)]
        lines += [f"removed: {key}" for key in sorted(self.removed)]
        lines += [f"modified: {key} ({', '.join(reasons)})" for key, reasons in sorted(self.modified.items())]
        lines += [f"indirect: {key} (via {', '.join(via)})" for key, via in sorted(self.indirect.items())]
        lines += [f"breaking: {key}: {'; '.join(reasons)}" for key, reasons in sorted(self.breaking.items())]
        lines += [f"non-breaking: {key}: {'; '.join(reasons)}" for key, reasons in sorted(self.non_breaking.items())]
        for side in ("added", "removed"):
            lines += [f"check {side}: {name}" for name in sorted(self.checks.get(side, []))]
        lines += [_describe_change("job", name, change) for name, change in sorted(self.jobs.items())]
        lines += [_describe_change("schedule", name, change) for name, change in sorted(self.schedules.items())]
        return lines

    def classes(self) -> dict[str, str]:
        """Key -> class of the picture (added, modified, indirect, removed, context)."""
        classes = {key: "context" for key in self.subgraph_deps}
        classes.update({key: "indirect" for key in self.indirect})
        classes.update({key: "modified" for key in self.modified})
        classes.update({key: "added" for key in self.added})
        classes.update({key: "removed" for key in self.removed})
        return classes

    def mermaid(self) -> str:
        """The impacted subgraph as a Mermaid flowchart, stable text; ``""`` when nothing is touched.

        Touched keys and their direct parents (grey, for context); removed keys drawn from the
        base graph (red, dashed) with their edges to the keys they fed.
        """
        if not self.subgraph_deps:
            return ""
        return flowchart(self.subgraph_deps, groups=self.subgraph_groups, statuses=self.classes(), styles=IMPACT_STYLES)


def compare_graphs(base: Mapping[str, Any], current: Mapping[str, Any], *, base_label: str) -> Impact:
    """The :class:`Impact` of going from the ``base`` graph export to the ``current`` one.

    Example::

        impact = compare_graphs(export_of_main, export_of_tree, base_label="origin/main (1a2b3c4)")
        impact.describe()  # ["modified: acme/staging/stg_orders (SQL)", ...]
    """
    base_assets: Mapping[str, Any] = base.get("assets") or {}
    current_assets: Mapping[str, Any] = current.get("assets") or {}
    added = sorted(set(current_assets) - set(base_assets))
    removed = sorted(set(base_assets) - set(current_assets))
    both = sorted(set(base_assets) & set(current_assets))

    modified = {key: reasons for key in both if (reasons := _reasons(base_assets[key], current_assets[key]))}
    breaking: dict[str, list[str]] = {key: ["asset removed"] for key in removed}
    non_breaking: dict[str, list[str]] = {}
    for key in both:
        broken, harmless = _column_changes(base_assets[key], current_assets[key])
        if broken:
            breaking[key] = broken
        elif harmless:
            non_breaking[key] = harmless
    # A declared column change is a direct change even when no facet hash moved.
    for key in set(breaking) | set(non_breaking):
        if key in current_assets and "columns" not in modified.get(key, []):
            modified[key] = sorted([*modified.get(key, []), "columns"])

    direct = set(added) | set(modified)
    indirect: dict[str, set[str]] = {}
    current_children = _children(current_assets)
    for key in sorted(direct):
        for reached in _downstream(key, current_children) - direct:
            indirect.setdefault(reached, set()).add(key)
    base_children = _children(base_assets)
    for key in removed:
        for reached in _downstream(key, base_children) - direct:
            if reached in current_assets:
                indirect.setdefault(reached, set()).add(key)

    checks = _check_changes(base_assets, current_assets)
    impact = Impact(
        base=base_label,
        added=added,
        removed=removed,
        modified=modified,
        indirect={key: sorted(via) for key, via in sorted(indirect.items())},
        breaking=dict(sorted(breaking.items())),
        non_breaking=non_breaking,
        checks=checks,
        jobs=_selection_changes(base.get("jobs") or {}, current.get("jobs") or {}, "job"),
        schedules=_schedule_changes(base.get("schedules") or {}, current.get("schedules") or {}),
    )
    deps, groups = _subgraph(impact.touched(), base_assets, current_assets)
    impact.subgraph_deps.update(deps)
    impact.subgraph_groups.update(groups)
    return impact


def _sorted_lists(mapping: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {key: sorted(values) for key, values in sorted(mapping.items()) if values}


def _reasons(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Display names of what changed in one asset present at both sides."""
    facets_before = before.get("facets") or {}
    facets_after = after.get("facets") or {}
    reasons = {
        FACET_NAMES.get(name, name)
        for name in set(facets_before) | set(facets_after)
        if facets_before.get(name) != facets_after.get(name)
    }
    if before.get("group") != after.get("group"):
        reasons.add("group")
    if sorted(before.get("deps") or []) != sorted(after.get("deps") or []):
        reasons.add("dependencies")
    if sorted(before.get("checks") or []) != sorted(after.get("checks") or []):
        reasons.add("checks")
    return sorted(reasons)


def _column_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(breaking, non-breaking) words from the declared columns of one asset.

    Told only when both sides declare columns: a side with none says nothing about the
    table. A removed or retyped column breaks readers; additions alone do not. A type
    declared at one side only is no retype (unknown is not a change). Types compare
    without case, as warehouses do.
    """
    old: Mapping[str, str | None] = before.get("columns") or {}
    new: Mapping[str, str | None] = after.get("columns") or {}
    if not old or not new:
        return [], []
    broken = [f"column {name} removed" for name in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        was, now = old[name], new[name]
        if was is not None and now is not None and was.strip().lower() != now.strip().lower():
            broken.append(f"column {name} retyped: {was} -> {now}")
    harmless = [f"column {name} added" for name in sorted(set(new) - set(old))]
    return broken, harmless


def _children(assets: Mapping[str, Any]) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for key, entry in assets.items():
        for parent in entry.get("deps") or []:
            children.setdefault(parent, set()).add(key)
    return children


def _downstream(key: str, children: Mapping[str, set[str]]) -> set[str]:
    """Every key reachable from ``key`` (not itself), iteratively: graphs can be deep."""
    seen: set[str] = set()
    todo = [key]
    while todo:
        for child in children.get(todo.pop(), set()):
            if child not in seen and child != key:
                seen.add(child)
                todo.append(child)
    return seen


def _check_changes(base_assets: Mapping[str, Any], current_assets: Mapping[str, Any]) -> dict[str, list[str]]:
    """Checks added and removed, as ``<key>:<check>`` (an added asset's checks are added)."""

    def names(assets: Mapping[str, Any]) -> set[str]:
        return {f"{key}:{check}" for key, entry in assets.items() for check in entry.get("checks") or []}

    before, after = names(base_assets), names(current_assets)
    changes = {"added": sorted(after - before), "removed": sorted(before - after)}
    return {side: found for side, found in changes.items() if found}


def _selection_changes(
    base: Mapping[str, Iterable[str]], current: Mapping[str, Iterable[str]], marker: str
) -> dict[str, dict[str, list[str]]]:
    """Jobs (or schedules) whose asset selection changed; one side only is marked ``marker``."""
    changes: dict[str, dict[str, list[str]]] = {}
    for name in sorted(set(base) | set(current)):
        before, after = set(base.get(name, [])), set(current.get(name, []))
        change = {"added": sorted(after - before), "removed": sorted(before - after)}
        if name not in base:
            change[marker] = ["added"]
        elif name not in current:
            change[marker] = ["removed"]
        change = {side: values for side, values in change.items() if values}
        if change:
            changes[name] = change
    return changes


def _schedule_changes(base: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Schedules whose assets, cron or job changed (``[base, current]`` for the latter two)."""
    changes: dict[str, dict[str, Any]] = dict(
        _selection_changes(
            {name: entry.get("assets") or [] for name, entry in base.items()},
            {name: entry.get("assets") or [] for name, entry in current.items()},
            "schedule",
        )
    )
    for name in sorted(set(base) & set(current)):
        for part in ("cron", "job"):
            if base[name].get(part) != current[name].get(part):
                changes.setdefault(name, {})[part] = [base[name].get(part), current[name].get(part)]
    for name in sorted(set(base) ^ set(current)):
        entry = base.get(name) or current[name]
        if entry.get("cron") is not None:
            changes.setdefault(name, {})["cron"] = [entry["cron"]]
    return {name: dict(sorted(change.items())) for name, change in sorted(changes.items())}


def _describe_change(kind: str, name: str, change: Mapping[str, Any]) -> str:
    """``job daily: +a, -b``; ``schedule s (added): cron 0 6 * * *, +a``."""
    marker = change.get(kind)
    words = []
    if "cron" in change:
        cron = change["cron"]
        words.append(f"cron {cron[0]} -> {cron[1]}" if len(cron) == 2 else f"cron {cron[0]}")
    if "job" in change and kind == "schedule":
        words.append(f"job {change['job'][0]} -> {change['job'][1]}")
    words += [f"+{key}" for key in change.get("added", [])]
    words += [f"-{key}" for key in change.get("removed", [])]
    head = f"{kind} {name} ({marker[0]})" if marker else f"{kind} {name}"
    return f"{head}: {', '.join(words)}" if words else head


def _subgraph(
    touched: set[str], base_assets: Mapping[str, Any], current_assets: Mapping[str, Any]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Deps and groups of the picture: touched keys, their direct parents, removed keys' edges."""
    deps: dict[str, set[str]] = {}
    groups: dict[str, str] = {}

    def place(key: str, entry: Mapping[str, Any]) -> None:
        deps.setdefault(key, set())
        if entry.get("group"):
            groups[key] = entry["group"]

    for key in sorted(touched):
        entry = current_assets.get(key) or base_assets[key]
        place(key, entry)
        for parent in entry.get("deps") or []:
            deps[key].add(parent)
            place(parent, current_assets.get(parent) or base_assets.get(parent) or {})
    for key in sorted(touched - set(current_assets)):
        for child, entry in base_assets.items():
            if key in (entry.get("deps") or []) and child in deps:
                deps[child].add(key)
    return {key: sorted(parents) for key, parents in sorted(deps.items())}, dict(sorted(groups.items()))
