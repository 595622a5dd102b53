"""pytest wiring: options, marker and fixtures. The work lives in the other modules."""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_dbt_assets.errors import DbtAssetsError, DbtWorkerRestartedWarning, ProjectNotFoundError
from pytest_dbt_assets.report import SummaryReporter
from pytest_dbt_assets.settings import FLAGS, OPTIONS, Settings, folder_to_find_dbt, resolve_settings

if TYPE_CHECKING:
    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.manifest import PreparedManifest
    from pytest_dbt_assets.syrupy_compat import SnapshotKeeper

SETTINGS_KEY = pytest.StashKey[Settings]()
WORKER_KEY = pytest.StashKey["DbtWorker"]()
# The manifest made in pytest_load_initial_conftests, or why it could not be made.
MANIFEST_KEY = pytest.StashKey["PreparedManifest | DbtAssetsError"]()
MARKER = "dbt_assets"
MARKER_HELP = (
    "dbt_assets(select=None, dbt_select=None, vars=None, data=None, indirect_selection=None, "
    "row_tolerance=None): per-test defaults for dbt_assets_materialize (indirect_selection: "
    "dbt's eager, cautious, buildable or empty; default eager, as in production), source rows "
    "('source.table' -> rows) for the run, and the row-count tolerance of dbt_assets_snapshot "
    "({'relative': 0.1, 'absolute': 2, 'assets': {key: {...}}})."
)
USER_PROPERTY = "dbt_assets_materialization"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dbt-assets", "dbt + Dagster asset testing (pytest-dbt-assets)")
    for name, help_text in OPTIONS.items():
        flag = "--dbt-assets-" + name.replace("_", "-")
        group.addoption(flag, dest=f"dbt_assets_{name}", default=None, help=help_text)
        parser.addini(f"dbt_assets_{name}", help=help_text, default=None)
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None]:
    """Before any conftest.py (and so any user module) is imported: make the dbt project's
    ``target/manifest.json`` the plugin's, and find a ``dbt`` installed beside Python.

    User Dagster modules read the manifest at import (``@dbt_assets(manifest=...)``), and
    conftest.py or test modules import them during collection: any later is too late. xdist
    workers run this too; the manifest cache's lock makes them parse once between them.
    """
    settings = _resolve(early_config, early_config.known_args_namespace)
    early_config.stash[SETTINGS_KEY] = settings
    options = early_config.known_args_namespace
    if settings.project_dir is not None and not (options.help or options.version):
        _find_dbt_beside_python(early_config)
        early_config.stash[MANIFEST_KEY] = _prepare_manifest(settings)
    try:
        return (yield)
    except Exception as error:
        cause = getattr(error, "cause", error)  # pytest's ConftestImportFailure wraps it
        explained = _explain_import_failure(early_config, f"{type(cause).__name__}: {cause}")
        if explained is None:
            raise
        raise pytest.UsageError(explained) from None


def _prepare_manifest(settings: Settings) -> PreparedManifest | DbtAssetsError:
    from pytest_dbt_assets.definitions import forget_cached_manifests
    from pytest_dbt_assets.manifest import prepare_manifest

    assert settings.project_dir is not None
    try:
        return prepare_manifest(settings.project_dir)
    except DbtAssetsError as error:  # reported by the fixtures, where tests can show it
        return error
    finally:
        forget_cached_manifests()


def _find_dbt_beside_python(config: pytest.Config) -> None:
    """Put ``sys.executable``'s folder on PATH for the session when it holds the only dbt."""
    saved = os.environ.get("PATH")
    folder = folder_to_find_dbt(saved, sys.executable)
    if folder is None:
        return
    os.environ["PATH"] = folder + (os.pathsep + saved if saved else "")

    def restore() -> None:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved

    config.add_cleanup(restore)


def _manifest_problem(config: pytest.Config) -> str | None:
    """Why the user's ``target/manifest.json`` is not the plugin's, or None."""
    prepared = config.stash.get(MANIFEST_KEY, None)
    if isinstance(prepared, DbtAssetsError):
        project_dir = config.stash[SETTINGS_KEY].project_dir
        return (
            f"The plugin could not make {project_dir}/target/manifest.json, which your Dagster "
            f"modules read at import:\n{type(prepared).__name__}: {prepared}"
        )
    return prepared.user_manifest_problem if prepared is not None else None


def _explain_import_failure(config: pytest.Config, error_text: str) -> str | None:
    """The plugin's words for a user module that failed to import because of the manifest
    the plugin could not write, or of the environment (no dbt); None for any other error."""
    from pytest_dbt_assets.definitions import environment_problem

    def lines_with(needle: str) -> list[str]:
        # pytest's "E   " prefix and pydantic's "Value error, " ... " [type=...]" wrapping removed
        found = [re.sub(r"^E\s+", "", line.strip()) for line in error_text.splitlines() if needle in line]
        return [re.sub(r"\s*\[type=[^\]]*\]$", "", line).removeprefix("Value error, ") for line in found]

    problem = _manifest_problem(config)
    if problem is not None and lines_with("manifest.json"):
        return f"{lines_with('manifest.json')[-1]}\n{problem}"
    if lines_with("not found on PATH"):
        fix = environment_problem(RuntimeError(lines_with("not found on PATH")[-1]))
        if fix is not None:
            return f"{lines_with('not found on PATH')[-1]}\n{fix}"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A test module that could not import the user's package for want of the manifest:
    say why the plugin could not write it, instead of dagster-dbt's traceback."""
    report = yield
    if report.failed and MANIFEST_KEY in collector.config.stash:
        explained = _explain_import_failure(collector.config, str(report.longrepr))
        if explained is not None:
            report.longrepr = explained
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if SETTINGS_KEY not in config.stash:  # registered after the early hook (pytest_plugins)
        config.stash[SETTINGS_KEY] = _resolve(config, config.option)
    prepared = config.stash.get(MANIFEST_KEY, None)
    if prepared is not None and not isinstance(prepared, DbtAssetsError) and prepared.cache_problem:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"dbt-assets: running without the manifest cache: {prepared.cache_problem}; "
                "each session parses the dbt project."
            ),
            stacklevel=2,
        )
    if config.stash[SETTINGS_KEY].mermaid and hasattr(config.option, "ignore_file_extensions"):
        # The .md pictures sit beside the snapshots: syrupy must not count them as unused.
        config.option.ignore_file_extensions = [*(config.option.ignore_file_extensions or []), "md"]
    config.pluginmanager.register(
        SummaryReporter(USER_PROPERTY, always=config.stash[SETTINGS_KEY].summary), "dbt_assets_summary"
    )
    _configure_snapshot_keeper(config)


# Snapshot safety: a failed test that uses the plugin's fixtures keeps its snapshots under
# --snapshot-update (syrupy_compat is the only module that touches syrupy's internals).


def _configure_snapshot_keeper(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("syrupy"):
        return
    from pytest_dbt_assets.syrupy_compat import SnapshotKeeper

    keeper = SnapshotKeeper(config)
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the warm dbt worker as soon as a collected test will need it: its imports and
    its parse then overlap with the session's own set-up instead of the first test's."""
    if session.config.option.collectonly:
        return
    if any("dbt_assets_dbt_executable" in getattr(item, "fixturenames", ()) for item in session.items):
        _worker(session.config)


def _worker(config: pytest.Config) -> DbtWorker | None:
    """The session's dbt worker, launched on first use; None with the subprocess runner.

    Its files live in a folder of pytest's basetemp, removed when the session ends; folders
    that killed sessions left behind are removed first."""
    from pytest_dbt_assets.dbt.worker import FOLDER_PREFIX, DbtWorker, remove_stale_folders

    if config.stash[SETTINGS_KEY].runner == "subprocess":
        return None
    worker = config.stash.get(WORKER_KEY, None)
    if worker is None:
        project_dir = config.stash[SETTINGS_KEY].project_dir
        cache_dir = project_dir / "target" / "dbt_assets_cache" / "partial_parse" if project_dir else None
        factory = _tmp_path_factory(config)
        remove_stale_folders(factory.getbasetemp())
        worker = config.stash[WORKER_KEY] = DbtWorker(factory.mktemp(FOLDER_PREFIX), cache_dir)
        config.add_cleanup(worker.stop)
        worker.launch()
    return worker


def _tmp_path_factory(config: pytest.Config) -> pytest.TempPathFactory:
    """The session's ``tmp_path_factory``, reachable from a hook.

    pytest offers no public way: its tmpdir plugin keeps the factory on the config (a
    private attribute, which pytest-xdist reads too). The worker is launched at collection,
    before any fixture runs, so this is the one place the plugin reads it.
    """
    return config._tmp_path_factory  # type: ignore[attr-defined,no-any-return]


def _worker_before_call(config: pytest.Config) -> None:
    """Before a materialization: a worker that died is restarted, with a warning (once)."""
    worker = config.stash.get(WORKER_KEY, None)
    if worker is not None and (what_happened := worker.ensure_running()) is not None:
        warnings.warn(DbtWorkerRestartedWarning(what_happened), stacklevel=3)


def _worker_after_call(config: pytest.Config, outcome: Any) -> None:
    """After a materialization that failed (a Materialization or MaterializationError): if
    the worker died during it, say so among its failures, not only dbt's exit code."""
    worker = config.stash.get(WORKER_KEY, None)
    failures = getattr(outcome, "failures", None)
    if worker is None or failures is None or getattr(outcome, "success", False):
        return
    if (what_happened := worker.death_during_call()) is not None:
        failures.append(what_happened)
        if isinstance(outcome, Exception) and outcome.args:
            outcome.args = (f"{outcome.args[0]}\n- {what_happened}", *outcome.args[1:])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if config.stash[SETTINGS_KEY].mermaid and getattr(config.option, "update_snapshots", False):
        from pytest_dbt_assets.snapshot import remove_orphan_pictures

        remove_orphan_pictures(config.rootpath, getattr(config.option, "snapshot_dirname", "__snapshots__"))


def _fail(error: DbtAssetsError) -> NoReturn:
    __tracebackhide__ = True
    # `from None`: called inside `except`, and pytest would print the error again as context.
    raise pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False) from None


@pytest.fixture(scope="session")
def dbt_assets_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Session: the user's dbt project copied to a temp folder, with the plugin's manifest.

    Its generated profiles.yml has a single DuckDB target inside the temp folder, so no test
    can reach a real warehouse. The manifest was made before conftest.py loaded (and written
    to ``<dbt project>/target/manifest.json``, the only write in the user's tree, for Dagster
    modules that read it at import): this fixture costs a copy of the project, no parse.
    Attributes: ``project_dir``, ``profiles_dir``, ``duckdb_path``, ``manifest``; methods
    ``query(sql)`` and ``dbt(*args)``.
    """
    from pytest_dbt_assets.manifest import load_manifest, write_user_manifest
    from pytest_dbt_assets.project import attach_pinned_databases, build_project

    settings = request.config.stash[SETTINGS_KEY]
    prepared = request.config.stash.get(MANIFEST_KEY, None)
    try:
        if settings.project_dir is None:
            raise ProjectNotFoundError(
                f"No dbt project to test: the rootdir {settings.rootdir} holds no dbt_project.yml. "
                "Set `dbt_assets_project_dir` in [tool.pytest.ini_options] (or pass "
                "--dbt-assets-project-dir) to the folder that holds it."
            )
        if isinstance(prepared, DbtAssetsError):
            raise prepared.with_traceback(None)
        project = build_project(settings.project_dir, tmp_path_factory.mktemp("dbt_assets"))
        if prepared is not None:
            prepared.install(project)
        else:  # the plugin was registered too late for the early hook: parse here
            load_manifest(project, settings.project_dir / "target" / "dbt_assets_cache")
            write_user_manifest(project)
        attach_pinned_databases(project)
    except DbtAssetsError as error:
        _fail(error)
    worker = request.config.stash.get(WORKER_KEY, None)
    if worker is not None:  # launched at collection: let it parse while Dagster loads
        worker.prepare_build(project)
    return project


@pytest.fixture(scope="session")
def dbt_assets_defs(request: pytest.FixtureRequest, dbt_assets_project: Any) -> Any:
    """Session: the ``dagster.Definitions`` under test (``dbt_assets_definitions``, or
    ``@dbt_assets`` built from the manifest), with every ``DbtCliResource`` and ``DbtProject``
    pointed at the temporary project and its DuckDB profile.

    Fails when your ``@dbt_assets`` were built from another manifest than the plugin's (your
    module was imported before the plugin could write it)."""
    from pytest_dbt_assets.definitions import build_default_definitions, import_definitions, validate_same_manifest
    from pytest_dbt_assets.relocate import relocate_definitions

    settings = request.config.stash[SETTINGS_KEY]
    try:
        if settings.definitions is None:
            defs = build_default_definitions(dbt_assets_project)
        else:
            defs = import_definitions(settings.definitions, settings.rootdir)
            validate_same_manifest(defs, dbt_assets_project, settings.definitions, _manifest_problem(request.config))
        return relocate_definitions(defs, dbt_assets_project)
    except DbtAssetsError as error:
        _fail(error)


@pytest.fixture(scope="session")
def dbt_asset_graph(dbt_assets_defs: Any) -> Any:
    """Session: the resolved asset graph as plain sorted data (``keys``, ``deps``,
    ``groups``, ``checks``, ``upstream(key)``, ``downstream(key)``, and the asset keys each
    job and schedule selects: ``jobs``, ``schedules``); compares equal to a
    ``dbt_assets_snapshot``."""
    from pytest_dbt_assets.graph import build_asset_graph

    try:
        return build_asset_graph(dbt_assets_defs)
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
def dbt_assets_dbt_executable(request: pytest.FixtureRequest, dbt_assets_project: Any) -> Iterator[str | None]:
    """Session: the dbt executable every ``DbtCliResource`` runs during materializations.

    With ``dbt_assets_runner = worker`` (the default) it is a small client of a warm dbt
    process (started once collection shows a test needs it, stopped at the end of the
    session): dagster-dbt still runs ``dbt build`` as a subprocess and reads dbt's own JSON
    lines, without paying for Python and dbt start-up each time. With ``subprocess`` it is
    None: the resource's own dbt.

    The client lives in ``<basetemp>/dbt_assets_worker0/`` and keeps its path for the whole
    session: a worker that dies is restarted once behind it (``DbtWorkerRestartedWarning``);
    a second death fails later materializations with ``DbtWorkerError``.
    """
    worker = _worker(request.config)
    if worker is None:
        yield None
        return
    try:
        worker.prepare_build(dbt_assets_project)
        try:
            worker.wait_ready()
        except DbtAssetsError as error:
            _fail(error)
        yield str(worker.executable)
    finally:
        worker.stop()


@pytest.fixture
def dbt_assets_materialize(
    request: pytest.FixtureRequest,
    dbt_assets_project: Any,
    dbt_assets_defs: Any,
    dbt_assets_resources: Mapping[str, Any],
    dbt_assets_data: Mapping[str, Any],
    dbt_assets_dbt_executable: str | None,
) -> Callable[..., Any]:
    """Function: ``dbt_assets_materialize(select=None, *, dbt_select=None, vars=None,
    resources=None, partition_key=None, indirect_selection=None, raise_on_error=True)
    -> Materialization``.

    Runs the selected assets in this process on a DuckDB database that starts empty for each
    test (calls inside one test share it, so a second call exercises incremental models).
    ``select`` takes what ``dagster.materialize(selection=...)`` takes; ``dbt_select`` takes
    dbt's ``--select`` syntax; given both, the run takes their union. ``indirect_selection``
    is dbt's (``eager``, ``cautious``, ``buildable``, ``empty``); None keeps production's.
    """
    from pytest_dbt_assets.materialize import materialize_assets

    settings = request.config.stash[SETTINGS_KEY]
    marker = request.node.get_closest_marker(MARKER)
    marked: dict[str, Any] = dict(marker.kwargs) if marker else {}
    data = {**dbt_assets_data, **(marked.get("data") or {})}
    dbt_assets_project.reset_database()

    def materialize(
        select: Any = None,
        *,
        dbt_select: str | list[str] | None = None,
        vars: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        indirect_selection: str | None = None,
        raise_on_error: bool = True,
    ) -> Any:
        __tracebackhide__ = True
        if select is None and dbt_select is None:
            select, dbt_select = marked.get("select"), marked.get("dbt_select")
        try:
            _worker_before_call(request.config)
            materialization = materialize_assets(
                dbt_assets_defs,
                dbt_assets_project,
                select=select,
                dbt_select=dbt_select,
                vars=vars if vars is not None else marked.get("vars"),
                resources={**dbt_assets_resources, **(resources or {})},
                partition_key=partition_key,
                indirect_selection=(
                    indirect_selection if indirect_selection is not None else marked.get("indirect_selection")
                ),
                raise_on_error=raise_on_error,
                data=data,
                data_dir=settings.data_dir,
                dbt_executable=dbt_assets_dbt_executable,
            )
        except DbtAssetsError as error:
            _worker_after_call(request.config, error)
            raise error.with_traceback(None) from None
        _worker_after_call(request.config, materialization)
        # user_properties travel with the report, so the summary works under xdist too.
        request.node.user_properties.append((USER_PROPERTY, materialization.summary()))
        return materialization

    return materialize


@pytest.fixture
def dbt_assets_snapshot(request: pytest.FixtureRequest, snapshot: Any) -> Any:
    """Function: syrupy's ``snapshot`` with the plugin's readable YAML format, one file per
    snapshot; a mismatch starts with one line per semantic change (asset added, dependency
    removed, row count 6 -> 7, ...)."""
    from pytest_dbt_assets.snapshot import RowTolerance, snapshot_extension

    settings = request.config.stash[SETTINGS_KEY]
    marker = request.node.get_closest_marker(MARKER)
    tolerance = (marker.kwargs.get("row_tolerance") if marker else None) or None
    extension = snapshot_extension(RowTolerance.build(**tolerance) if tolerance is not None else None, settings.mermaid)
    return snapshot.use_extension(extension)
