"""pytest wiring: options, marker and fixtures. The work lives in the other modules."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dbt_assets import compat
from pytest_dbt_assets.errors import DbtAssetsError
from pytest_dbt_assets.report import SummaryReporter
from pytest_dbt_assets.session import (
    DbtAssetsSession,
    MaterializeAssets,
    SnapshotKeeper,
    call_arguments,
    source_rows,
    starts_from_baseline,
    validate_marker,
)
from pytest_dbt_assets.settings import FLAGS, OPTIONS, SEVERAL, Settings, resolve_settings

if TYPE_CHECKING:
    from dagster import Definitions
    from syrupy.assertion import SnapshotAssertion

    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.graph import AssetGraph
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject

# The session object: settings, the manifest made in pytest_load_initial_conftests, the worker.
SESSION_KEY = pytest.StashKey[DbtAssetsSession]()
MARKER = "dbt_assets"
MARKER_HELP = (
    "dbt_assets(select=None, dbt_select=None, vars=None, data=None, indirect_selection=None, "
    "row_tolerance=None, baseline=None): per-test defaults for dbt_assets_materialize (indirect_selection: "
    "dbt's eager, cautious, buildable or empty; default eager, as in production; baseline=True: "
    "the test's database starts as a copy of the session baseline), source rows "
    "('source.table' -> rows) for the run, and the row-count tolerance of dbt_assets_snapshot "
    "({'relative': 0.1, 'absolute': 2, 'assets': {key: {...}}})."
)
USER_PROPERTY = "dbt_assets_materialization"


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
            session.spawn_worker()
        session.start()
    try:
        return (yield)
    except Exception as error:
        cause = compat.import_failure_cause(error)
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
    if report.failed and session is not None and session.prepared is not None:
        explained = session.explain_import_failure(str(report.longrepr))
        if explained is not None:
            report.longrepr = explained
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    session = _session(config)
    if session.cache_problem:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"dbt-assets: running without the manifest cache: {session.cache_problem}; "
                "each session parses the dbt project."
            ),
            stacklevel=2,
        )
    if session.settings.mermaid:
        # The .md pictures sit beside the snapshots: syrupy must not count them as unused.
        compat.ignore_snapshot_files_ending(config.option, "md")
    config.pluginmanager.register(SummaryReporter(USER_PROPERTY, always=session.settings.summary), "dbt_assets_summary")
    _configure_snapshot_keeper(config)


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
        from pytest_dbt_assets.snapshot import first_change

        change = first_change(str(report.longrepr))
        if crash is not None and change is not None:
            crash.message = f"What changed: {change}"
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    """One sentence when the project's adapter is one the plugin does not serve."""
    session = config.stash.get(SESSION_KEY, None)
    return session.foreign_note() if session is not None else None


# Snapshot safety: a failed test that uses the plugin's fixtures keeps its snapshots under
# --snapshot-update (compat.record_as_skipped is the touch of syrupy's internals).


def _configure_snapshot_keeper(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("syrupy"):
        return
    keeper = SnapshotKeeper(lambda nodeid: compat.record_as_skipped(config, nodeid), compat.record_as_skipped_problem())
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
    """Hands collected tests and failed reports to the :class:`SnapshotKeeper`."""

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
    listing = any(getattr(options, name, False) for name in ("collectonly", "showfixtures", "show_fixtures_per_test"))
    controller = bool(getattr(options, "numprocesses", None)) and "PYTEST_XDIST_WORKER" not in os.environ
    return not listing and not controller


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose ``@pytest.mark.dbt_assets(...)`` has a misspelt or positional argument
    errors before it runs, whatever fixtures it uses."""
    for marker in item.iter_markers(MARKER):
        try:
            validate_marker(marker.args, marker.kwargs)
        except DbtAssetsError as error:
            _fail(error)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Let the warm dbt worker (started with the session, importing dbt meanwhile) serve as
    soon as a collected test will need it: its parse then overlaps with the session's own
    set-up instead of the first test's. Without such a test, it is stopped."""
    if not session.config.option.collectonly and any(
        "dbt_assets_dbt_executable" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        _launch_worker(session.config)
    else:
        _session(session.config).discard_unused_worker()


def _launch_worker(config: pytest.Config) -> DbtWorker | None:
    factory = compat.session_tmp_path_factory(config)
    return _session(config).launch_worker(factory.getbasetemp(), factory.mktemp)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _session(config).settings.mermaid and compat.syrupy_option(config.option, "update_snapshots"):
        from pytest_dbt_assets.snapshot import remove_orphan_pictures

        remove_orphan_pictures(
            config.rootpath, compat.syrupy_option(config.option, "snapshot_dirname") or "__snapshots__"
        )


def _fail(error: DbtAssetsError) -> NoReturn:
    __tracebackhide__ = True
    # `from None`: called inside `except`, and pytest would print the error again as context.
    raise pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False) from None


@pytest.fixture(scope="session")
def dbt_assets_projects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, DbtAssetsProject]:
    """Session: every dbt project of the code location, dbt project name -> temporary project
    (one entry for most repos; one per ``DbtProjectComponent`` of a components project).

    Each is a copy of the user's dbt project in its own temp folder with its own generated
    profiles.yml and the plugin's manifest; every profile's single DuckDB target is the same
    file, so a project that reads another's models as sources finds them, and ``query(sql)``
    of any of them sees every project's relations.
    """
    try:
        return _session(request.config).build_projects(tmp_path_factory.mktemp("dbt_assets"))
    except DbtAssetsError as error:
        _fail(error)


@pytest.fixture(scope="session")
def dbt_assets_project(
    request: pytest.FixtureRequest, dbt_assets_projects: dict[str, DbtAssetsProject]
) -> DbtAssetsProject:
    """Session: the user's dbt project copied to a temp folder, with the plugin's manifest.

    Its generated profiles.yml has a single DuckDB target inside the temp folder, so no test
    can reach a real warehouse. The manifest was made before conftest.py loaded (and written
    to ``<dbt project>/target/manifest.json``, the only write in the user's tree, for Dagster
    modules that read it at import): this fixture costs no parse, and no copy either when the
    copy made for that parse can be moved here.
    Attributes: ``project_dir``, ``profiles_dir``, ``duckdb_path``, ``manifest``; methods
    ``query(sql)`` and ``dbt(*args)``. A code location with several dbt projects fails it:
    use ``dbt_assets_projects`` there.
    """
    try:
        return DbtAssetsSession.single_project(dbt_assets_projects)
    except DbtAssetsError as error:
        _fail(error)


@pytest.fixture(scope="session")
def dbt_assets_defs(request: pytest.FixtureRequest, dbt_assets_projects: dict[str, DbtAssetsProject]) -> Definitions:
    """Session: the ``dagster.Definitions`` under test (``dbt_assets_definitions``, or
    ``@dbt_assets`` built from the manifest), with every ``DbtCliResource`` and ``DbtProject``
    pointed at the temporary project and its DuckDB profile.

    Fails when your ``@dbt_assets`` were built from another manifest than the plugin's (your
    module was imported before the plugin could write it)."""
    try:
        return _session(request.config).load_definitions(DbtAssetsSession.main_project(dbt_assets_projects))
    except DbtAssetsError as error:
        _fail(error)


@pytest.fixture(scope="session")
def dbt_asset_graph(dbt_assets_defs: Definitions) -> AssetGraph:
    """Session: the resolved asset graph as plain sorted data (``keys``, ``deps``,
    ``groups``, ``checks``, ``upstream(key)``, ``downstream(key)``, and the asset keys each
    job and schedule selects: ``jobs``, ``schedules``); compares equal to a
    ``dbt_assets_snapshot``. Named without the ``dbt_assets_`` prefix: a public name since
    the first release, and distinct enough not to collide."""
    try:
        return DbtAssetsSession.build_graph(dbt_assets_defs)
    except DbtAssetsError as error:
        _fail(error)


@pytest.fixture
def dbt_assets_resources() -> dict[str, Any]:
    """Function: extra resources merged over the definitions' own for each materialization.

    Override it in conftest.py, e.g. to point your DuckDB resource at the test database::

        @pytest.fixture
        def dbt_assets_resources(dbt_assets_project):
            return {"warehouse": DuckDBWarehouse(path=str(dbt_assets_project.duckdb_path))}
    """
    return {}


@pytest.fixture
def dbt_assets_data() -> dict[str, Any]:
    """Function: source rows for the run, ``"source.table"`` -> list of dicts, a CSV path or a
    DataFrame. Override it to feed dbt sources; the marker's ``data=`` wins over it."""
    return {}


@pytest.fixture(scope="session")
def dbt_assets_dbt_executable(
    request: pytest.FixtureRequest, dbt_assets_projects: dict[str, DbtAssetsProject]
) -> Iterator[str | None]:
    """Session: the dbt executable every ``DbtCliResource`` runs during materializations.

    With ``dbt_assets_runner = worker`` (the default) it is a small client of a warm dbt
    process (started with the session, serving once collection shows a test needs it,
    stopped at the end of the session): dagster-dbt still runs ``dbt build`` as a subprocess and reads dbt's own JSON
    lines, without paying for Python and dbt start-up each time. With ``subprocess`` it is
    None: the resource's own dbt (on a Snowflake project, a ``dbt`` that runs on the emulator).

    The client lives in ``<basetemp>/dbt_assets_worker0/`` and keeps its path for the whole
    session: a worker that dies is restarted once behind it (``DbtWorkerRestartedWarning``);
    a second death fails later materializations with ``DbtWorkerError``.
    """
    session = _session(request.config)
    if _launch_worker(request.config) is None:
        # The project's own dbt: None, but on Snowflake, dbt on the emulator.
        yield session.dbt_executable(DbtAssetsSession.main_project(dbt_assets_projects))
        return
    try:
        try:
            executable = session.dbt_executable(DbtAssetsSession.main_project(dbt_assets_projects))
        except DbtAssetsError as error:
            _fail(error)
        yield executable
    finally:
        session.stop_worker()


@pytest.fixture
def dbt_assets_materialize(
    request: pytest.FixtureRequest,
    dbt_assets_projects: dict[str, DbtAssetsProject],
    dbt_assets_defs: Definitions,
    dbt_assets_resources: Mapping[str, Any],
    dbt_assets_data: Mapping[str, Any],
    dbt_assets_dbt_executable: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> MaterializeAssets:
    """Function: ``dbt_assets_materialize(select=None, *, dbt_select=None, vars=None,
    resources=None, partition_key=None, indirect_selection=None, raise_on_error=True,
    baseline=None) -> Materialization``.

    Runs the selected assets in this process on a DuckDB database that starts empty for each
    test (calls inside one test share it, so a second call exercises incremental models).
    ``select`` takes what ``dagster.materialize(selection=...)`` takes; ``dbt_select`` takes
    dbt's ``--select`` syntax; given both, the run takes their union. ``indirect_selection``
    is dbt's (``eager``, ``cautious``, ``buildable``, ``empty``); None keeps production's.
    ``baseline=True`` (or the marker's): the test's database starts as a copy of the session
    baseline (``dbt_assets_baseline_select``, built once and kept for later runs), and the first call builds
    only its own selection on it.
    """
    session = _session(request.config)
    # With several dbt projects, the first: it holds the others and their shared database.
    dbt_assets_project = DbtAssetsSession.main_project(dbt_assets_projects)
    marker = request.node.get_closest_marker(MARKER)
    marked: dict[str, Any] = dict(marker.kwargs) if marker else {}
    data = source_rows(dbt_assets_data, marked)
    dbt_assets_project.reset_database()
    started: list[bool] = []  # how the test's database started, once its first call ran

    def materialize(
        select: Any = None,
        *,
        dbt_select: str | Sequence[str] | None = None,
        vars: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        indirect_selection: str | None = None,
        raise_on_error: bool = True,
        baseline: bool | None = None,
    ) -> Materialization:
        __tracebackhide__ = True
        given = {"select": select, "dbt_select": dbt_select, "vars": vars, "indirect_selection": indirect_selection}
        try:
            from_baseline = starts_from_baseline(
                baseline,
                marked.get("baseline"),
                first_call=not started,
                started_from_baseline=bool(started and started[0]),
            )
            started.append(from_baseline)
            materialization = session.materialize(
                dbt_assets_defs,
                dbt_assets_project,
                **call_arguments(given, marked),
                resources={**dbt_assets_resources, **(resources or {})},
                partition_key=partition_key,
                raise_on_error=raise_on_error,
                data=data,
                dbt_executable=dbt_assets_dbt_executable,
                baseline_folder=_baseline_folder(request.config, tmp_path_factory) if from_baseline else None,
            )
        except DbtAssetsError as error:
            raise error.with_traceback(None) from None
        # user_properties travel with the report, so the summary works under xdist too.
        request.node.user_properties.append((USER_PROPERTY, materialization.summary()))
        return materialization

    return materialize


def _baseline_folder(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    """Where the session baseline's template lives: shared by the xdist workers of one run."""
    from pytest_dbt_assets.baseline import shared_folder

    return shared_folder(factory.getbasetemp(), xdist_worker=hasattr(config, "workerinput"))


@pytest.fixture
def dbt_assets_snapshot(request: pytest.FixtureRequest, snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Function: syrupy's ``snapshot`` with the plugin's readable YAML format, one file per
    snapshot; a mismatch starts with one line per semantic change (asset added, dependency
    removed, row count 6 -> 7, ...)."""
    from pytest_dbt_assets.snapshot import RowTolerance, short_repr_assertion, snapshot_extension

    settings = _session(request.config).settings
    marker = request.node.get_closest_marker(MARKER)
    tolerance = (marker.kwargs.get("row_tolerance") if marker else None) or None
    extension = snapshot_extension(RowTolerance.build(**tolerance) if tolerance is not None else None, settings.mermaid)
    return short_repr_assertion(snapshot.use_extension(extension))
