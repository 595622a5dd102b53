"""Mermaid flowcharts of asset graphs, for pull requests (GitHub renders them)."""

from __future__ import annotations

from collections.abc import Mapping

STATUS_STYLES = {
    "materialized": "fill:#d3f9d8,stroke:#2b8a3e",
    "failed": "fill:#ffe3e3,stroke:#c92a2a",
    "skipped": "fill:#f1f3f5,stroke:#868e96,stroke-dasharray: 4 2",
}


def _label(key: str) -> str:
    return key.replace('"', "#quot;")


def flowchart(
    deps: Mapping[str, list[str]],
    *,
    groups: Mapping[str, str] | None = None,
    statuses: Mapping[str, str] | None = None,
    styles: Mapping[str, str] | None = None,
) -> str:
    """A ``flowchart LR`` with one node per key, a subgraph per group and one edge per dep.

    Node ids follow sorted key order, so the text is stable. ``statuses`` maps keys to a
    class name, by default ``materialized`` / ``failed`` / ``skipped``; each class in use
    becomes a ``classDef`` with its style from ``styles`` (default :data:`STATUS_STYLES`), so
    other pictures (the impact of a change) colour nodes their own way with the same writer.
    """
    keys = sorted(set(deps) | {parent for parents in deps.values() for parent in parents})
    ids = {key: f"n{index}" for index, key in enumerate(keys)}
    lines = ["flowchart LR"]
    by_group: dict[str, list[str]] = {}
    for key in keys:
        by_group.setdefault((groups or {}).get(key) or "", []).append(key)
    for index, group in enumerate(sorted(by_group)):
        indent = "  "
        if group:
            lines.append(f'  subgraph g{index}["{_label(group)}"]')
            indent = "    "
        for key in by_group[group]:
            lines.append(f'{indent}{ids[key]}["{_label(key)}"]')
        if group:
            lines.append("  end")
    for key in keys:
        for parent in sorted(deps.get(key, [])):
            lines.append(f"  {ids[parent]} --> {ids[key]}")
    if statuses:
        styles = STATUS_STYLES if styles is None else styles
        for status in sorted(styles):
            members = [ids[key] for key in keys if statuses.get(key) == status]
            if members:
                lines.append(f"  classDef {status} {styles[status]}")
                lines.append(f"  class {','.join(members)} {status}")
    return "\n".join(lines) + "\n"
