"""pytest wiring: options, marker, hooks and the fixtures' registration. The fixtures live in
``fixtures.py``, the sequence in ``session.py``, the work in the modules below them."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from pytest_dbt_assets.compat import pytest as pytest_compat
from pytest_dbt_assets.compat import syrupy as syrupy_compat
from pytest_dbt_assets.diff.fixtures import dbt_assets_diff  # noqa: F401 - registered as the plugin's fixture
from pytest_dbt_assets.diff.selecting import ChangedSince, ReachRecorder
from pytest_dbt_assets.errors import DbtAssetsError
from pytest_dbt_assets.fixture_base import MARKER, SESSION_KEY, fail
from pytest_dbt_assets.fixtures import (  # noqa: F401 - registered as the plugin's fixtures
    USER_PROPERTY,
    dbt_asset_graph,
    dbt_assets_data,
    dbt_assets_dbt_executable,
    dbt_assets_defs,
    dbt_assets_materialize,
    dbt_assets_project,
    dbt_assets_projects,
    dbt_assets_resources,
    dbt_assets_snapshot,
    launch_worker,
    validate_marker,
)
from pytest_dbt_assets.quiet import abandoned_dbt_streams_unreported
from pytest_dbt_assets.report import SnapshotKeeper, SummaryReporter, first_change
from pytest_dbt_assets.session import DbtAssetsSession
from pytest_dbt_assets.settings import FLAGS, OPTIONS, SEVERAL, Settings, resolve_settings

MARKER_HELP = (
    "dbt_assets(select=None, dbt_select=None, vars=None, data=None, indirect_selection=None, "
    "row_tolerance=None, baseline=None): per-test defaults for dbt_assets_materialize (indirect_selection: "
    "dbt's eager, cautious, buildable or empty; default eager, as in production; baseline=True: "
    "the test's database starts as a copy of the session baseline), source rows "
    "('source.table' -> rows) for the run, and the row-count tolerance of dbt_assets_snapshot "
    "({'relative': 0.1, 'absolute': 2, 'assets': {key: {...}}})."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dbt-assets", "dbt + Dagster asset testing (pytest-dbt-assets)")
    for name, help_text in OPTIONS.items():
        flag = "--dbt-assets-" + name.replace("_", "-")
        several = name in SEVERAL  # one a line in the ini file, the flag repeated
        group.addoption(
            flag, dest=f"dbt_assets_{name}", default=None, help=help_text, action="append" if several else "store"
        )
        parser.addini(f"dbt_assets_{name}", help=help_text, default=None, type="linelist" if several else None)
    for name, help_text in FLAGS.items():
        flag = "--dbt-assets-" + name.replace("_", "-")
        group.addoption(flag, dest=f"dbt_assets_{name}", action="store_true", default=None, help=help_text)
        parser.addini(f"dbt_assets_{name}", help=help_text, type="bool", default=False)


def _resolve(config: pytest.Config, options: Any) -> Settings:
    """Settings from ``options`` (the parsed command line, or its known part early on) and ini."""
    try:
        return resolve_settings(
            rootdir=config.rootpath,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
            invocation_dir=config.invocation_params.dir,
            cli={name: getattr(options, f"dbt_assets_{name}", None) for name in OPTIONS},
            ini={name: config.getini(f"dbt_assets_{name}") for name in OPTIONS},
            flags={
                name: getattr(options, f"dbt_assets_{name}", None) or config.getini(f"dbt_assets_{name}")
                for name in FLAGS
            },
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _session(config: pytest.Config) -> DbtAssetsSession:
    """The config's session object, made on first use (early hook, or pytest_configure when
    the plugin is registered after the early hook, e.g. through ``pytest_plugins``)."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        session = config.stash[SESSION_KEY] = DbtAssetsSession(_resolve(config, config.option))
        config.add_cleanup(session.close)
    return session


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None]:
    """Before any conftest.py (and so any user module) is imported: make the dbt project's
    ``target/manifest.json`` the plugin's, and find a ``dbt`` installed beside Python.

    User Dagster modules read the manifest at import (``@dbt_assets(manifest=...)``), and
    conftest.py or test modules import them during collection: any later is too late. xdist
    workers run this too; the manifest cache's lock makes them parse once between them.
    """
    options = early_config.known_args_namespace
    session = early_config.stash[SESSION_KEY] = DbtAssetsSession(_resolve(early_config, options))
    early_config.add_cleanup(session.close)
    if not (options.help or options.version):
        if _may_run_tests(options):
            session.supervisor.spawn()
        elif _xdist_controller(options) and not _listing(options):
            session.supervisor.start_zygote()
        session.start()
    try:
        return (yield)
    except Exception as error:
        cause = pytest_compat.import_failure_cause(error)
        explained = session.explain_import_failure(f"{type(cause).__name__}: {cause}")
        if explained is None:
            raise
        raise pytest.UsageError(explained) from None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A test module that could not import the user's package for want of the manifest:
    say why the plugin could not write it, instead of dagster-dbt's traceback."""
    report = yield
    session = collector.config.stash.get(SESSION_KEY, None)
    if report.failed and session is not None and session.workspace.prepared is not None:
        explained = session.explain_import_failure(str(report.longrepr))
        if explained is not None:
            report.longrepr = explained
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    session = _session(config)
    if session.workspace.cache_problem:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"dbt-assets: running without the manifest cache: {session.workspace.cache_problem}; "
                "each session parses the dbt project."
            ),
            stacklevel=2,
        )
    if session.settings.mermaid:
        # The .md pictures sit beside the snapshots: syrupy must not count them as unused.
        syrupy_compat.ignore_snapshot_files_ending(config.option, "md")
    config.pluginmanager.register(SummaryReporter(USER_PROPERTY, always=session.settings.summary), "dbt_assets_summary")
    if (session.settings.impact or session.settings.report is not None) and not hasattr(config, "workerinput"):
        from pytest_dbt_assets.diff.reporting import ChangeReporter  # only when asked

        config.pluginmanager.register(ChangeReporter(config), "dbt_assets_changes")
    config.pluginmanager.register(ReachRecorder(config), "dbt_assets_reach")
    if session.settings.changed_since is not None:
        config.pluginmanager.register(ChangedSince(config, session.settings.changed_since), "dbt_assets_changed_since")
    _configure_snapshot_keeper(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    # After pytest's own unraisable-exception hook is in place (its pytest_configure), and put
    # back after its last collection (its pytest_unconfigure; cleanups come later).
    session.config.add_cleanup(abandoned_dbt_streams_unreported())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """The short summary line (``-r``, ``FAILED ... - ``) of a failed snapshot comparison starts
    with the first change told in words; of a plugin error, with what failed."""
    report = yield
    crash = getattr(report.longrepr, "reprcrash", None)
    if (
        report.failed
        and crash is not None
        and call.excinfo is not None
        and isinstance(call.excinfo.value, DbtAssetsError)
    ):
        crash.message = call.excinfo.value.headline()
    elif report.failed and "dbt_assets_snapshot" in getattr(item, "fixturenames", ()):
        change = first_change(str(report.longrepr))
        if crash is not None and change is not None:
            crash.message = f"What changed: {change}"
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    """One sentence when the project's adapter is one the plugin does not serve."""
    session = config.stash.get(SESSION_KEY, None)
    return session.workspace.foreign_note() if session is not None else None


# Snapshot safety: a failed test that uses the plugin's fixtures keeps its snapshots under
# --snapshot-update (compat.syrupy.record_as_skipped is the touch of syrupy's internals).


def _configure_snapshot_keeper(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("syrupy"):
        return
    keeper = SnapshotKeeper(
        lambda nodeid: syrupy_compat.record_as_skipped(config, nodeid), syrupy_compat.record_as_skipped_problem()
    )
    if keeper.problem is not None:
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"pytest-dbt-assets cannot protect the snapshots of failed tests: {keeper.problem}. "
                "Do not run --snapshot-update while tests fail."
            ),
            stacklevel=2,
        )
    config.pluginmanager.register(_SnapshotSafety(keeper), "dbt_assets_snapshot_safety")


class _SnapshotSafety:
    """Hands collected tests and failed reports to the :class:`SnapshotKeeper` (registered
    as a plugin object: ``pytest_runtest_logreport`` is given no config to find it in)."""

    def __init__(self, keeper: SnapshotKeeper) -> None:
        self.keeper = keeper

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.keeper.protect(
            {
                item.nodeid
                for item in items
                if "snapshot" in (names := getattr(item, "fixturenames", ()))
                and any(name.startswith("dbt_asset") for name in names)
            }
        )

    @pytest.hookimpl(trylast=True)  # after syrupy's own hook has recorded the outcome
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and report.when in ("setup", "call"):
            self.keeper.failed(report.nodeid)


def _may_run_tests(options: Any) -> bool:
    """Whether this process may run tests that materialize: not only listing them, and not
    the controller of xdist workers (each worker is a session of its own)."""
    return not _listing(options) and not _xdist_controller(options)


def _listing(options: Any) -> bool:
    return any(getattr(options, name, False) for name in ("collectonly", "showfixtures", "show_fixtures_per_test"))


def _xdist_controller(options: Any) -> bool:
    return bool(getattr(options, "numprocesses", None)) and "PYTEST_XDIST_WORKER" not in os.environ


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose ``@pytest.mark.dbt_assets(...)`` has a misspelt or positional argument
    errors before it runs, whatever fixtures it uses."""
    for marker in item.iter_markers(MARKER):
        try:
            validate_marker(marker.args, marker.kwargs)
        except DbtAssetsError as error:
            fail(error)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Let the warm dbt worker (started with the session, importing dbt meanwhile) serve as
    soon as a collected test will need it: its parse then overlaps with the session's own
    set-up instead of the first test's. Without such a test, it is stopped."""
    if not session.config.option.collectonly and any(
        "dbt_assets_dbt_executable" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        launch_worker(session.config)
    else:
        _session(session.config).supervisor.discard_unused()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _session(config).settings.mermaid and syrupy_compat.syrupy_option(config.option, "update_snapshots"):
        from pytest_dbt_assets.snapshot import remove_orphan_pictures  # syrupy: see above

        remove_orphan_pictures(
            config.rootpath, syrupy_compat.syrupy_option(config.option, "snapshot_dirname") or "__snapshots__"
        )
