"""Only the tests a change touches, as pytest sees it: each test's reach recorded in pytest's
cache (:class:`ReachRecorder`, always on), and ``--dbt-assets-changed-since=REV``
(:class:`ChangedSince`, registered by ``plugin.py`` only when asked). The rules live in
:mod:`.changed`.

Under xdist, reaches travel to the controller in the reports' user properties and the
controller writes the cache; the controller computes the change once and hands it to the
workers in ``workerinput``; each worker deselects (they collect the same tests) and the first
one to finish sends its decisions back for the summary.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_dbt_assets.diff.changed import (
    Change,
    Reach,
    build_change,
    build_reach,
    changed_files,
    decide,
    load_records,
    merge_records,
    relevant_files,
)
from pytest_dbt_assets.diff.fixtures import session_impact
from pytest_dbt_assets.diff.revision import repository_root
from pytest_dbt_assets.errors import DbtAssetsError
from pytest_dbt_assets.fixture_base import session_of
from pytest_dbt_assets.words import plural

REACHED = pytest.StashKey[set[str]]()
"""The asset keys a test's ``dbt_assets_materialize`` calls selected (set by the fixture)."""
REACH_PROPERTY = "dbt_assets_reach"
CACHE_KEY = "dbt_assets/reach"
_WORKER_INPUT = "dbt_assets_changed"
_WORKER_OUTPUT = "dbt_assets_deselected"


def uses_plugin(item: pytest.Item) -> bool:
    """Whether a test uses any of the plugin's fixtures (only those are recorded or deselected)."""
    return any(name.startswith("dbt_assets_") or name == "dbt_asset_graph" for name in _fixturenames(item))


def _fixturenames(item: pytest.Item) -> list[str]:
    return list(getattr(item, "fixturenames", ()))


def _asked(item: pytest.Item) -> set[str]:
    """The fixtures the test itself asks for: its arguments and ``usefixtures``."""
    asked = {name for marker in item.iter_markers("usefixtures") for name in marker.args}
    function = getattr(item, "function", None)
    if function is not None:
        try:
            asked.update(inspect.signature(function).parameters)
        except (TypeError, ValueError):  # no signature to read: the closure decides
            pass
    return asked


class ReachRecorder:
    """Adds each plugin test's reach to its reports; where reports gather (the single process or
    the xdist controller), merges them over the cached record at the end of the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reaches: dict[str, Reach] = {}
        self.failed: set[str] = set()
        self.skipped: set[str] = set()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        if uses_plugin(item):
            selected: set[str] = item.stash.get(REACHED, set())
            reach = build_reach(selected, _asked(item), _fixturenames(item))
            report.user_properties = [*report.user_properties, (REACH_PROPERTY, reach.to_plain())]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == REACH_PROPERTY and isinstance(value, dict):
                self.reaches[report.nodeid] = Reach.from_plain(value)
        if report.failed:
            self.failed.add(report.nodeid)
        elif report.skipped and report.when in ("setup", "call"):
            self.skipped.add(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(self.config, "cache", None)  # None: -p no:cacheprovider
        if cache is None or hasattr(self.config, "workerinput"):
            return
        ran = {
            nodeid: Reach(reach.keys, reach.everything, failed=nodeid in self.failed)
            for nodeid, reach in self.reaches.items()
            if nodeid in self.failed or nodeid not in self.skipped  # a skipped test keeps its old record
        }
        if ran:
            cache.set(CACHE_KEY, merge_records(load_records(cache.get(CACHE_KEY, None)), ran))


class ChangedSince:
    """``--dbt-assets-changed-since=REV``: deselects the plugin tests whose recorded reach the
    change since REV does not meet, and says why for each."""

    def __init__(self, config: pytest.Config, revision: str) -> None:
        self.config = config
        self.revision = revision
        self.computed = False
        self.change: Change | None = None
        self.repo: Path | None = None
        self.label = revision
        self.problem: str | None = None
        self.collected: int | None = None
        self.deselected: list[tuple[str, str]] = []

    # -- the change, once: in the single process or the xdist controller -------------------

    def _compute(self) -> None:
        if self.computed:
            return
        self.computed = True
        try:
            self._compute_change()
        except DbtAssetsError as error:
            self.problem = str(error)
        except Exception as error:  # noqa: BLE001 - whatever failed, every test runs, and the run says why
            self.problem = f"{type(error).__name__}: {error}"
        if self.problem is not None:
            self.config.issue_config_time_warning(
                pytest.PytestWarning(
                    f"dbt-assets: --dbt-assets-changed-since={self.revision}: cannot tell which tests the change "
                    f"touches, so every test runs. {self.problem}"
                ),
                stacklevel=2,
            )

    def _compute_change(self) -> None:
        if getattr(self.config, "cache", None) is None:
            self.problem = "The tests' records live in pytest's cache: run without -p no:cacheprovider."
            return
        settings = session_of(self.config).settings
        repo = repository_root(settings.rootdir)
        impact = session_impact(self.config, self.revision)
        self.label = impact.base  # the revision as resolved for the impact
        data_dir = None
        if settings.data_dir is not None and settings.data_dir.resolve().is_relative_to(repo):
            data_dir = settings.data_dir.resolve().relative_to(repo).as_posix()
        self.repo = repo
        self.change = build_change(
            self.revision,
            touched=impact.touched(),
            added=impact.added,
            parents=impact.subgraph_deps,
            graph_changed=not impact.unchanged(),
            files=changed_files(repo, self.revision),
            data_dir=data_dir,
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not hasattr(self.config, "workerinput"):
            self._compute()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self._compute()
        node.workerinput[_WORKER_INPUT] = {
            "change": None if self.change is None else self.change.to_plain(),
            "repo": None if self.repo is None else str(self.repo),
        }

    # -- deselection: in the single process or each xdist worker ---------------------------

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            given = workerinput.get(_WORKER_INPUT) or {}
            self.change = Change.from_plain(given["change"]) if given.get("change") else None
            self.repo = Path(given["repo"]) if given.get("repo") else None
        self.collected = len(items)
        cache = getattr(config, "cache", None)
        if self.change is None or self.repo is None or cache is None:
            return
        records = load_records(cache.get(CACHE_KEY, None))
        kept: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for item in items:
            if uses_plugin(item):
                decision = decide(records.get(item.nodeid), self.change, self._files_of(item))
                if not decision.run:
                    dropped.append(item)
                    self.deselected.append((item.nodeid, decision.reason))
                    continue
            kept.append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    def _files_of(self, item: pytest.Item) -> list[str]:
        assert self.repo is not None
        try:
            return relevant_files(item.path.resolve().relative_to(self.repo).as_posix())
        except ValueError:  # a test outside the repository: git cannot tell it changed
            return []

    # -- the summary: in the single process or the xdist controller ------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[_WORKER_OUTPUT] = {"collected": self.collected, "deselected": self.deselected}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        told = (getattr(node, "workeroutput", None) or {}).get(_WORKER_OUTPUT)
        if told is not None and self.collected is None:  # every worker decided the same
            self.collected = told["collected"]
            self.deselected = [(nodeid, reason) for nodeid, reason in told["deselected"]]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        terminalreporter.section("dbt-assets changed since")
        if self.change is None:
            terminalreporter.write_line(f"dbt-assets: cannot tell what changed since {self.label}: every test ran")
            return
        for nodeid, reason in self.deselected:
            terminalreporter.write_line(f"dbt-assets: deselected {nodeid}: {reason}")
        collected = "?" if self.collected is None else str(self.collected)
        terminalreporter.write_line(
            f"dbt-assets: changed since {self.label}: {plural(len(self.change.touched), 'asset')} touched, "
            f"{plural(len(self.change.files), 'file')} changed; {len(self.deselected)} of {collected} tests deselected"
        )
