"""The pull-request report: the graph impact, its Mermaid picture, failed snapshots and data
diffs as GitHub-flavoured Markdown, short enough to post as a PR comment.

Pure text from plain data; data diffs are duck-typed (``.tables`` mapping keys to objects with
``.describe()``, ``.unchanged()`` and ``.breaking``, and ``.describe()``), so this module imports no diff engine.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pytest_dbt_assets.diff.impact import Impact
from pytest_dbt_assets.words import plural

FOLD_ROWS = 20
"""A table or list longer than this folds into ``<details>``."""

FOLD_NODES = 30
"""A Mermaid picture with more nodes than this folds into ``<details>``."""

LINE_CHARS = 160
"""A data-diff line longer than this is cut in the list (the full text is folded below it)."""

MIN_BODY = 5
"""Fewest lines of a folded text kept when the report must shrink to ``max_lines``."""

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


@dataclass(frozen=True)
class _Cut:
    """A fenced text that may be shortened to fit the report's line budget."""

    before: list[str]
    body: list[str]
    after: list[str]

    def lines(self, cap: int) -> list[str]:
        body = self.body
        if len(body) > cap:
            body = [*body[:cap], f"... {len(self.body) - cap} more lines left out"]
        return [*self.before, *body, *self.after]


_Block: TypeAlias = "list[str] | _Cut"


def render_report(
    *,
    impact: Impact | None,
    data_diffs: Sequence[tuple[str, Any]],
    failed_snapshots: Sequence[tuple[str, str]],
    title: str = "pytest-dbt-assets report",
    max_lines: int = 400,
) -> str:
    """The report as Markdown, at most about ``max_lines`` lines, deterministic.

    ``data_diffs`` pairs a test's nodeid with its ``DataDiff``; ``failed_snapshots`` pairs a
    nodeid with the snapshot's "What changed" text. Both are sorted by nodeid here, so the
    order in which xdist workers finished does not show. Long texts are folded in
    ``<details>`` and, past ``max_lines``, shortened, then whole sections are left out with a
    note saying how many.

    Example::

        text = render_report(impact=impact, data_diffs=[], failed_snapshots=[])
        Path("report.md").write_text(text)
    """
    snapshots = sorted(failed_snapshots, key=lambda pair: pair[0])
    diffs = sorted(data_diffs, key=lambda pair: pair[0])
    units: list[list[_Block]] = [[[f"## {title}", "", _headline(impact, snapshots, diffs)]]]
    if impact is not None and not impact.unchanged():
        units.append(_impact_section(impact))
        picture = impact.mermaid()
        if picture:
            units.append(_mermaid_section(picture, len(impact.classes())))
    if snapshots:
        units += _headed(f"### Failed snapshots ({len(snapshots)})", [_snapshot_unit(*pair) for pair in snapshots])
    if diffs:
        units += _headed("### Data diffs", [_data_diff_unit(*pair) for pair in diffs])
    return "\n".join(_fit(units, max_lines)) + "\n"


def _headed(heading: str, units: list[list[_Block]]) -> list[list[_Block]]:
    """``units`` with ``heading`` on the first, so a section left out takes its heading along."""
    first = units[0][0]
    assert isinstance(first, list)
    return [[["", heading, *first], *units[0][1:]], *units[1:]]


def code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def escape(text: str) -> str:
    """Inline text with Markdown's special characters backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def cell(text: str) -> str:
    """Markdown for one table cell: pipes escaped (even in code spans, as GFM requires)."""
    return text.replace("|", "\\|").replace("\n", "<br>")


def _fenced(text: str, info: str = "text") -> tuple[list[str], list[str], list[str]]:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}"], text.rstrip("\n").split("\n"), [fence]


def _details(summary: str, inner: list[str]) -> list[str]:
    """``<details>`` with an HTML-escaped summary; the blank lines let GitHub render Markdown inside."""
    return [f"<details><summary>{html.escape(summary)}</summary>", "", *inner, "", "</details>"]


def _headline(impact: Impact | None, snapshots: Sequence[tuple[str, str]], diffs: Sequence[tuple[str, Any]]) -> str:
    """One line of counts, e.g. ``2 assets modified, 3 downstream, 1 breaking; 1 snapshot failed``."""
    tables = [table for _, diff in diffs for table in diff.tables.values() if not table.unchanged()]
    graph_changed = impact is not None and not impact.unchanged()
    if not graph_changed and not snapshots and not diffs:
        if impact is None:
            return "Nothing to report: no snapshot failed and no data was compared."
        return f"Nothing changed against {code(impact.base)}: no asset, check, job or schedule differs."
    parts = []
    if impact is not None:
        counts = [
            (len(impact.added), "added"),
            (len(impact.modified), "modified"),
            (len(impact.removed), "removed"),
            (len(impact.indirect), "downstream"),
        ]
        nonzero = [(count, word) for count, word in counts if count]
        words = [
            f"{plural(count, 'asset')} {word}" if index == 0 else f"{count} {word}"
            for index, (count, word) in enumerate(nonzero)
        ] or ["no asset changed"]
        if impact.breaking:
            words.append(f"{len(impact.breaking)} breaking")
        if impact.jobs:
            words.append(f"{plural(len(impact.jobs), 'job')} changed")
        if impact.schedules:
            words.append(f"{plural(len(impact.schedules), 'schedule')} changed")
        parts.append(", ".join(words))
    if snapshots:
        parts.append(f"{plural(len(snapshots), 'snapshot')} failed")
    if diffs:
        broken = sum(1 for table in tables if table.breaking)
        parts.append(f"data: {plural(len(tables), 'asset')} changed" + (f" ({broken} breaking)" if broken else ""))
    against = f" (against {code(impact.base)})" if impact is not None else ""
    return f"**{'; '.join(parts)}**{against}"


def _impact_section(impact: Impact) -> list[_Block]:
    """A table of touched assets, then checks, jobs and schedules; each folded when long."""
    rows = []
    for change, keys in (
        ("added", impact.added),
        ("modified", sorted(impact.modified)),
        ("removed", impact.removed),
        ("downstream", sorted(impact.indirect)),
    ):
        for key in keys:
            details = []
            if key in impact.modified:
                details.append(escape(", ".join(impact.modified[key])))
            if key in impact.indirect:
                details.append("via " + ", ".join(code(parent) for parent in impact.indirect[key]))
            reasons = [reason for reason in impact.breaking.get(key, []) if reason != "asset removed"]
            if reasons:
                details.append("breaking: " + escape("; ".join(reasons)))
            if key in impact.non_breaking:
                details.append("non-breaking: " + escape("; ".join(impact.non_breaking[key])))
            mark = f"{change}, **breaking**" if key in impact.breaking else change
            rows.append(f"| {cell(code(key))} | {mark} | {cell('; '.join(details))} |")
    blocks: list[_Block] = [["", "### Impact on the asset graph"]]
    if rows:
        table = ["| Asset | Change | Details |", "|---|---|---|", *rows]
        blocks.append(["", *(_details(f"{len(rows)} assets touched", table) if len(rows) > FOLD_ROWS else table)])
    others = _other_changes(impact)
    if others:
        folded = len(others) > FOLD_ROWS
        blocks.append(["", *(_details(f"{len(others)} check, job and schedule changes", others) if folded else others)])
    return blocks


def _other_changes(impact: Impact) -> list[str]:
    """Bullets for checks, jobs and schedules."""
    lines = [f"- check {side}: {code(name)}" for side in ("added", "removed") for name in impact.checks.get(side, [])]
    for kind, changes in (("job", impact.jobs), ("schedule", impact.schedules)):
        for name, change in sorted(changes.items()):
            marker = change.get(kind)
            words = []
            if "cron" in change:
                words.append("cron " + " -> ".join(code(cron) for cron in change["cron"]))
            if kind == "schedule" and "job" in change:
                words.append("job " + " -> ".join(code(str(job)) for job in change["job"]))
            words += [f"+{code(key)}" for key in change.get("added", [])]
            words += [f"-{code(key)}" for key in change.get("removed", [])]
            head = f"- {kind} {code(name)}" + (f" ({marker[0]})" if marker else "")
            lines.append(f"{head}: {', '.join(words)}" if words else head)
    return lines


def _mermaid_section(picture: str, nodes: int) -> list[_Block]:
    """The picture in a ```mermaid block; folded when it has many nodes (never cut: it would not draw)."""
    before, body, after = _fenced(picture, "mermaid")
    block = [*before, *body, *after]
    legend = "Green: added, orange: modified, yellow: downstream, red dashed: removed, grey: unchanged parents."
    if nodes > FOLD_NODES:
        return [["", *_details(f"Impacted subgraph ({nodes} assets)", [legend, "", *block])]]
    return [["", legend, "", *block]]


def _snapshot_unit(nodeid: str, text: str) -> list[_Block]:
    before, body, after = _fenced(text)
    return [
        ["", f"<details><summary>{html.escape(nodeid)}</summary>", "", *before],
        _Cut([], body, after + ["", "</details>"]),
    ]


def _data_diff_unit(nodeid: str, diff: Any) -> list[_Block]:
    """One line per asset a test's data diff found changed, and a count of the unchanged ones;
    the full words folded below when any line is long."""
    lines = ["", f"**{code(nodeid)}**", ""]
    full: list[str] = []
    tables: Mapping[str, Any] = diff.tables
    unchanged = 0
    for key, table in sorted(tables.items()):
        if table.unchanged():
            unchanged += 1
            continue
        text = str(table.describe()).strip().removeprefix(f"{key}: ")
        first = text.split("\n", 1)[0]
        if len(first) > LINE_CHARS:
            first = first[: LINE_CHARS - 1] + "…"
        mark = " **breaking**" if table.breaking else ""
        lines.append(f"- {code(key)}{mark}: {escape(first)}")
        if first != text:
            full += [f"{key}:", *("  " + line for line in text.split("\n")), ""]
    if unchanged:
        lines.append(f"- {plural(unchanged, 'other asset')} unchanged")
    if not tables:
        lines.append(f"- {escape(str(diff.describe()).strip() or 'no asset compared')}")
    if not full:
        return [lines]
    before, body, after = _fenced("\n".join(full))
    opening = ["", f"<details><summary>Full data diff of {html.escape(nodeid)}</summary>", "", *before]
    return [lines + opening, _Cut([], body, after + ["", "</details>"])]


def _render(units: Sequence[list[_Block]], cap: int) -> list[str]:
    return [
        line for unit in units for block in unit for line in (block if isinstance(block, list) else block.lines(cap))
    ]


def _fit(units: list[list[_Block]], max_lines: int) -> list[str]:
    """The report's lines within ``max_lines``: folded texts shortened first, then trailing sections left out."""
    longest = max((len(block.body) for unit in units for block in unit if isinstance(block, _Cut)), default=0)
    cap = longest
    while cap > MIN_BODY and len(_render(units, cap)) > max_lines:
        cap = max(MIN_BODY, cap * 3 // 4)
    lines = _render(units, cap)
    if len(lines) <= max_lines:
        return lines
    kept = list(units)
    while len(kept) > 1 and len(_render(kept, cap)) > max_lines - 2:
        kept.pop()
    lines = _render(kept, cap)
    if len(kept) < len(units):
        left = len(units) - len(kept)
        lines += ["", f"_{plural(left, 'more section')} left out to keep the report under {max_lines} lines._"]
    return lines
