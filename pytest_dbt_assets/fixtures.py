"""The plugin's fixtures, and the marker's arguments checked against its signature.

``plugin.py`` registers these (pytest-django's plugin/fixtures split); each fixture hands
straight to the session object (:mod:`.session`) kept in ``config.stash``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_dbt_assets.baseline import shared_folder
from pytest_dbt_assets.compat import pytest as pytest_compat
from pytest_dbt_assets.diff.fixtures import graph_impact
from pytest_dbt_assets.diff.selecting import REACHED
from pytest_dbt_assets.errors import BaselineError, DbtAssetsError, MarkerError
from pytest_dbt_assets.fixture_base import fail, marker_kwargs, session_of, source_rows
from pytest_dbt_assets.session import DbtAssetsSession
from pytest_dbt_assets.workspace import main_project, single_project

if TYPE_CHECKING:
    from dagster import Definitions
    from syrupy.assertion import SnapshotAssertion

    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.graph import AssetGraph
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject

# What ``@pytest.mark.dbt_assets(...)`` takes, all by keyword (see :func:`validate_marker`).
MARKER_KEYWORDS = ("select", "dbt_select", "vars", "data", "indirect_selection", "row_tolerance", "baseline")
# The report property each materialization's summary travels in (to the xdist controller too).
USER_PROPERTY = "dbt_assets_materialization"


class MaterializeAssets(Protocol):
    """The type of the ``dbt_assets_materialize`` fixture: annotate a test's argument with it."""

    def __call__(
        self,
        select: Any = None,
        *,
        dbt_select: str | Sequence[str] | None = None,
        vars: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        indirect_selection: str | None = None,
        raise_on_error: bool = True,
        baseline: bool | None = None,
    ) -> Materialization: ...


# -- the marker ----------------------------------------------------------------------------


def validate_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise :class:`MarkerError` when the marker's arguments are not :data:`MARKER_KEYWORDS`
    (a misspelt keyword would otherwise be silently ignored).

    Raises:
        MarkerError: a positional argument, or a keyword the marker does not take.
    """
    __tracebackhide__ = True
    if args:
        raise MarkerError(
            f"@pytest.mark.dbt_assets takes keywords only ({', '.join(MARKER_KEYWORDS)}), not "
            f"{', '.join(map(repr, args))}: "
            "write e.g. @pytest.mark.dbt_assets(dbt_select='+customers')."
        )
    for name in kwargs:
        if name not in MARKER_KEYWORDS:
            close = difflib.get_close_matches(name, MARKER_KEYWORDS, n=1)
            hint = f" Did you mean {close[0]}=?" if close else ""
            raise MarkerError(
                f"@pytest.mark.dbt_assets({name}=...) is not an argument of the marker, which takes "
                f"{', '.join(MARKER_KEYWORDS)}.{hint}"
            )


def call_arguments(call: Mapping[str, Any], marker: Mapping[str, Any]) -> dict[str, Any]:
    """A ``dbt_assets_materialize`` call's arguments over the marker's defaults (call >
    marker, by ``is not None``). ``select`` and ``dbt_select`` go together: a call that gives
    either one takes neither from the marker."""
    resolved = dict(call)
    if call.get("select") is None and call.get("dbt_select") is None:
        resolved["select"], resolved["dbt_select"] = marker.get("select"), marker.get("dbt_select")
    for name in ("vars", "indirect_selection"):
        if call.get(name) is None:
            resolved[name] = marker.get(name)
    return resolved


def starts_from_baseline(call: Any, marker: Any, *, first_call: bool, started_from_baseline: bool) -> bool:
    """Whether this ``dbt_assets_materialize`` call starts the test's database from the session
    baseline (call argument > marker, by ``is not None``; default False).

    Only a test's first call chooses: later calls build on what the test's database already
    holds, and one that asks explicitly for another start than the first call's is refused.

    Raises:
        BaselineError: ``baseline`` is not a bool, or a later call asks for another start.
    """
    __tracebackhide__ = True
    for where, value in (
        ("dbt_assets_materialize(baseline=...)", call),
        ("@pytest.mark.dbt_assets(baseline=...)", marker),
    ):
        if value is not None and not isinstance(value, bool):
            raise BaselineError(f"{where} takes True or False, not {value!r}.")
    if first_call:
        return bool(call if call is not None else marker)
    if call is not None and call != started_from_baseline:
        start = "a copy of the session baseline" if started_from_baseline else "an empty database"
        raise BaselineError(
            f"dbt_assets_materialize(baseline={call!r}) in a later call of this test: the test's database "
            f"started as {start} at its first call and now holds what that call built. baseline only "
            "chooses how a test's database starts, so only the first call takes it. Pass "
            f"baseline={call!r} to the first call (or mark the test "
            f"@pytest.mark.dbt_assets(baseline={call!r})), or leave it out of later calls."
        )
    return False


# -- the fixtures --------------------------------------------------------------------------


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
        return session_of(request.config).build_projects(tmp_path_factory.mktemp("dbt_assets"))
    except DbtAssetsError as error:
        fail(error)


@pytest.fixture(scope="session")
def dbt_assets_project(dbt_assets_projects: dict[str, DbtAssetsProject]) -> DbtAssetsProject:
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
        return single_project(dbt_assets_projects)
    except DbtAssetsError as error:
        fail(error)


@pytest.fixture(scope="session")
def dbt_assets_defs(request: pytest.FixtureRequest, dbt_assets_projects: dict[str, DbtAssetsProject]) -> Definitions:
    """Session: the ``dagster.Definitions`` under test (``dbt_assets_definitions``, or
    ``@dbt_assets`` built from the manifest), with every ``DbtCliResource`` and ``DbtProject``
    pointed at the temporary project and its DuckDB profile.

    Fails when your ``@dbt_assets`` were built from another manifest than the plugin's (your
    module was imported before the plugin could write it)."""
    try:
        return session_of(request.config).load_definitions(main_project(dbt_assets_projects))
    except DbtAssetsError as error:
        fail(error)


@pytest.fixture(scope="session")
def dbt_asset_graph(
    request: pytest.FixtureRequest, dbt_assets_defs: Definitions, tmp_path_factory: pytest.TempPathFactory
) -> AssetGraph:
    """Session: the resolved asset graph as plain sorted data (``keys``, ``deps``,
    ``groups``, ``checks``, ``upstream(key)``, ``downstream(key)``, and the asset keys each
    job and schedule selects: ``jobs``, ``schedules``); compares equal to a
    ``dbt_assets_snapshot``. ``diff(base=None)`` tells what the working tree changes against a
    git revision. Named without the ``dbt_assets_`` prefix: a public name since
    the first release, and distinct enough not to collide."""
    try:
        graph = DbtAssetsSession.build_graph(dbt_assets_defs)
    except DbtAssetsError as error:
        fail(error)

    def differ(base: str | None) -> Any:
        __tracebackhide__ = True
        try:
            return graph_impact(request.config, dbt_assets_defs, graph, base, tmp_path_factory)
        except DbtAssetsError as error:
            fail(error)

    graph._bind_differ(differ)
    return graph


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


def launch_worker(config: pytest.Config) -> DbtWorker | None:
    """The session's dbt worker, launched in a folder of pytest's basetemp (None: no worker)."""
    factory = pytest_compat.session_tmp_path_factory(config)
    return session_of(config).launch_worker(factory.getbasetemp(), factory.mktemp)


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
    session = session_of(request.config)
    project = main_project(dbt_assets_projects)
    if launch_worker(request.config) is None:
        # The project's own dbt: None, but on Snowflake, dbt on the emulator.
        yield session.dbt_executable(project)
        return
    try:
        try:
            executable = session.dbt_executable(project)
        except DbtAssetsError as error:
            fail(error)
        yield executable
    finally:
        session.supervisor.stop()


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
    session = session_of(request.config)
    # With several dbt projects, the first: it holds the others and their shared database.
    project = main_project(dbt_assets_projects)
    marked = marker_kwargs(request)
    data = source_rows(dbt_assets_data, marked)
    project.reset_database()
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
                project,
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
        request.node.stash.setdefault(REACHED, set()).update(materialization.statuses)  # --dbt-assets-changed-since
        return materialization

    return materialize


def _baseline_folder(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    """Where the session baseline's template lives: shared by the xdist workers of one run."""
    return shared_folder(factory.getbasetemp(), xdist_worker=hasattr(config, "workerinput"))


@pytest.fixture
def dbt_assets_snapshot(request: pytest.FixtureRequest, snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Function: syrupy's ``snapshot`` with the plugin's readable YAML format, one file per
    snapshot; a mismatch starts with one line per semantic change (asset added, dependency
    removed, row count 6 -> 7, ...)."""
    # syrupy (a quarter second) loads with the first snapshot, not with the plugin.
    from pytest_dbt_assets.snapshot import RowTolerance, short_repr_assertion, snapshot_extension

    settings = session_of(request.config).settings
    tolerance = marker_kwargs(request).get("row_tolerance") or None
    extension = snapshot_extension(RowTolerance.build(**tolerance) if tolerance is not None else None, settings.mermaid)
    return short_repr_assertion(snapshot.use_extension(extension))
