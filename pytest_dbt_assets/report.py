"""What the plugin does with test reports, pytest-free: the end-of-session terminal summary
(per test, what was materialized, rows and checks), and which failed tests keep their
snapshots under ``--snapshot-update``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

_CHECK_MARKS = {"passed": "ok", "failed": "FAILED", "warn": "warn", "skipped": "skipped"}


def summary_table(summaries: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A compact table: one block per materialization, one row per asset.

    Each row shows the asset, its row count and its checks (``ok`` / ``warn`` / ``FAILED``
    / ``skipped`` counts).
    """
    lines: list[str] = []
    for nodeid, summary in summaries:
        assets = summary.get("assets") or {}
        checks = summary.get("checks") or {}
        status = "ok" if summary.get("success") else "FAILED"
        lines.append(f"{nodeid}  [{status}]  {len(assets)} assets, {len(checks)} checks")
        width = max((len(key) for key in assets), default=0)
        for key, entry in assets.items():
            rows = entry.get("rows")
            lines.append(f"  {key:<{width}}  {'-' if rows is None else rows:>8}")
        counts: dict[str, int] = {}
        for result in checks.values():
            counts[_CHECK_MARKS.get(result, result)] = counts.get(_CHECK_MARKS.get(result, result), 0) + 1
        if counts:
            lines.append("  checks: " + ", ".join(f"{count} {mark}" for mark, count in sorted(counts.items())))
        not_passed = sorted(name for name, result in checks.items() if result in {"failed", "warn"})
        for name in not_passed:
            lines.append(f"    {checks[name]}: {name}")
    return "\n".join(lines)


class SummaryReporter:
    """pytest hooks collecting each test's materialization summaries from its report.

    Summaries travel in ``report.user_properties``, so this works on the xdist controller.
    """

    def __init__(self, property_name: str, *, always: bool) -> None:
        self.property_name = property_name
        self.always = always
        self.summaries: list[tuple[str, Mapping[str, Any]]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == self.property_name:
                self.summaries.append((report.nodeid, value))

    def pytest_terminal_summary(self, terminalreporter: Any, config: Any) -> None:
        if self.summaries and (self.always or config.get_verbosity() > 0):
            terminalreporter.write_sep("-", "dbt assets materialized")
            terminalreporter.write_line(summary_table(self.summaries))


class SnapshotKeeper:
    """Failed tests that use the plugin's fixtures keep their snapshots under ``--snapshot-update``.

    ``protect(nodeids)`` at collection names the tests concerned; ``failed(nodeid)`` runs after
    syrupy has recorded a failed set-up or call report, and has ``record_skipped(nodeid)``
    (:func:`compat.syrupy.record_as_skipped`) tell syrupy the test was skipped, whose snapshots it
    never counts as unused. Does nothing when ``problem`` says the installed syrupy is not
    the one the shim knows (the plugin warns once).
    """

    def __init__(self, record_skipped: Callable[[str], None], problem: str | None) -> None:
        self.record_skipped = record_skipped
        self.problem = problem
        self.nodeids: set[str] = set()

    def protect(self, nodeids: set[str]) -> None:
        self.nodeids |= nodeids

    def failed(self, nodeid: str) -> None:
        if self.problem is None and nodeid in self.nodeids:
            self.record_skipped(nodeid)


def first_change(failure_text: str) -> str | None:
    """The first line under "What changed:" in a failed test's report, for pytest's short
    summary line (which otherwise reads ``AssertionError: assert [+ recei...``); None when the
    failure is not a snapshot difference told in words."""
    changes = changes_told(failure_text)
    return changes[0] if changes else None


def changes_told(failure_text: str) -> list[str]:
    """Every line under "What changed:" in a failed test's report (empty when the failure is
    not a snapshot difference told in words)."""
    lines = [line.removeprefix("E").strip() for line in failure_text.splitlines()]
    for index, line in enumerate(lines):
        if line == "What changed:":
            told = []
            for each in lines[index + 1 :]:
                if not each:
                    break
                told.append(each)
            return told
    return []
