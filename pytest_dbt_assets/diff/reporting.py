"""What a run tells about the change under review, at its end: the impact against the base
revision (``--dbt-assets-impact``), and the Markdown report for the pull request
(``--dbt-assets-report``) with the impact, each data diff and each failed snapshot's changes.

Registered by ``plugin.py`` only when asked. It sees every test's report, in the xdist
controller too (data diffs travel in the reports' user properties).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_dbt_assets.diff.fixtures import DIFF_PROPERTY, session_impact
from pytest_dbt_assets.errors import DbtAssetsError
from pytest_dbt_assets.fixture_base import session_of
from pytest_dbt_assets.report import changes_told

if TYPE_CHECKING:
    from pytest_dbt_assets.diff.impact import Impact


class ChangeReporter:
    """Collects data diffs and failed snapshots; tells the impact and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.data_diffs: list[tuple[str, Any]] = []
        self.failed_snapshots: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties if report.when == "call" else ():
            if name == DIFF_PROPERTY:
                self.data_diffs.append((report.nodeid, value))
        if report.failed and report.when == "call":
            told = changes_told(str(report.longrepr))
            if told:
                self.failed_snapshots.append((report.nodeid, "\n".join(told)))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        settings = session_of(self.config).settings
        impact, problem = self._impact()
        if settings.impact:
            terminalreporter.section("dbt-assets impact")
            if impact is None:
                terminalreporter.write_line(f"cannot tell: {problem}")
            else:
                terminalreporter.write_line(f"against {impact.base}:")
                for line in impact.describe() or ["no asset changes"]:
                    terminalreporter.write_line(f"  {line}")
        if settings.report is not None:
            from pytest_dbt_assets.diff.markdown import render_report

            text = render_report(
                impact=impact,
                data_diffs=[(nodeid, _Lines(value)) for nodeid, value in self.data_diffs],
                failed_snapshots=self.failed_snapshots,
            )
            if impact is None and problem is not None:
                text += f"\n> The impact could not be told: {problem}\n"
            settings.report.parent.mkdir(parents=True, exist_ok=True)
            settings.report.write_text(text, encoding="utf-8")
            terminalreporter.write_line(f"dbt-assets report written to {settings.report}")

    def _impact(self) -> tuple[Impact | None, str | None]:
        try:
            return session_impact(self.config, None), None
        except DbtAssetsError as error:
            return None, str(error)


class _Lines:
    """A data diff as it travelled in a report: its base and its lines in words."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.base = value.get("base")
        self.lines = list(value.get("lines") or [])
        self.tables = {
            key: _Table(line, key in value.get("breaking", []), key in value.get("unchanged", []))
            for key, line in value.get("tables", {}).items()
        }

    def describe(self) -> list[str]:
        return self.lines


class _Table:
    def __init__(self, line: str, breaking: bool, unchanged: bool) -> None:
        self.line = line
        self.breaking = breaking
        self._unchanged = unchanged

    def unchanged(self) -> bool:
        return self._unchanged

    def describe(self) -> str:
        return self.line
