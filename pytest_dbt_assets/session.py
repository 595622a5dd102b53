"""The session's sequence, without pytest: prepare the manifest, build the temporary project,
load and relocate the definitions, build the graph, materialize.

Like syrupy's ``SnapshotSession``, one :class:`DbtAssetsSession` per pytest session owns the
sequence and its state; ``plugin.py``'s hooks and fixtures hand straight to it, and
``benchmarks/same_session.py`` drives the same object. Everything it takes is plain: resolved
:class:`~pytest_dbt_assets.settings.Settings`, paths, mappings.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_dbt_assets import compat
from pytest_dbt_assets.cache import cache_folder
from pytest_dbt_assets.errors import (
    DbtAssetsError,
    DbtWorkerRestartedWarning,
    DefinitionsError,
    MarkerError,
    ProjectNotFoundError,
    SeveralProjectsError,
)
from pytest_dbt_assets.quiet import quiet_upstream
from pytest_dbt_assets.settings import Settings, folder_to_find_dbt

if TYPE_CHECKING:
    from dagster import Definitions

    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.graph import AssetGraph
    from pytest_dbt_assets.manifest import PreparedManifest
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject
    from pytest_dbt_assets.selection import DbtNodes
    from pytest_dbt_assets.warehouse import Backend


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


class DbtAssetsSession:
    """One test session's dbt project, manifest, definitions and dbt worker.

    Call :meth:`start` as early as possible (before any user module is imported), then
    :meth:`build_project`, :meth:`load_definitions`, :meth:`build_graph` and
    :meth:`materialize` as the tests need them; :meth:`close` at the end restores what
    :meth:`start` changed and stops the worker.

    Example:
        >>> session = DbtAssetsSession(settings)
        >>> session.start()
        >>> project = session.build_project(Path("/tmp/work"))
        >>> defs = session.load_definitions(project)
        >>> session.materialize(defs, project, dbt_select="+customers").row_counts
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The manifest made by start(), or why it could not be made; None before start().
        self.prepared: PreparedManifest | DbtAssetsError | None = None
        self.worker: DbtWorker | None = None
        # The same for each further dbt project of the code location (settings.project_dirs[1:]).
        self.prepared_others: dict[Path, PreparedManifest | DbtAssetsError] = {}
        self._early_workdir: Path | None = None
        self._cleanups: list[Callable[[], None]] = []
        self._baseline_key: str | None = None
        self._baseline_store: Path | None = None  # None: the run's own folder
        # How the test database is served (chosen by start()), or why it cannot be.
        self.backend: Backend | DbtAssetsError | None = None

    # -- start-up --------------------------------------------------------------------------

    def start(self) -> None:
        """Make the dbt project's ``target/manifest.json`` the plugin's and find a ``dbt``
        installed beside Python. A parse error is kept (:attr:`prepared`) for the fixtures to
        report, where tests can show it; nothing is raised. No dbt project: nothing to do."""
        if self.settings.project_dir is None:
            return
        self._find_dbt_beside_python()
        from pytest_dbt_assets.manifest import prepare_manifest
        from pytest_dbt_assets.owner import make_temp_folder
        from pytest_dbt_assets.warehouse import choose_backend

        try:
            self.backend = choose_backend(self.settings.project_dir, self.settings.rootdir, self.settings.warehouse)
        except DbtAssetsError as error:
            self.backend = self.prepared = error
            return
        # The temporary copy made for the parse is kept for build_project (see there).
        self._early_workdir = make_temp_folder()
        try:
            with quiet_upstream():  # dbt is imported here: its tracking library's root log handler goes
                self.prepared = prepare_manifest(self.settings.project_dir, self._early_workdir, self.backend)
        except DbtAssetsError as error:
            self.prepared = error
        finally:
            compat.forget_dagster_dbt_manifests()
        self._prepare_other_projects()
        self._point_dbt_projects_at_own_manifests()

    def _prepare_other_projects(self) -> None:
        """:meth:`start`'s parse for each further dbt project of the code location (several
        ``DbtProjectComponent``s): each ``target/manifest.json`` becomes the plugin's before
        any user module reads it. Their copies are made again in :meth:`build_project`."""
        from pytest_dbt_assets.manifest import prepare_manifest

        for project_dir in self.settings.project_dirs[1:]:
            try:
                self.prepared_others[project_dir] = prepare_manifest(project_dir, backend=self._backend())
            except DbtAssetsError as error:
                self.prepared_others[project_dir] = error
            finally:
                compat.forget_dagster_dbt_manifests()

    def _find_dbt_beside_python(self) -> None:
        """Put ``sys.executable``'s folder on PATH until :meth:`close` when it holds the only dbt."""
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

        self._cleanups.append(restore)

    def _backend(self) -> Backend | None:
        """The backend :meth:`start` chose (None before it, or when it could not choose)."""
        return None if isinstance(self.backend, DbtAssetsError) else self.backend

    def foreign_note(self) -> str | None:
        """The sentence for a project on an adapter the plugin does not serve, or None."""
        from pytest_dbt_assets.warehouse import foreign_note

        backend = self._backend()
        return None if backend is None else foreign_note(backend.target)

    def close(self) -> None:
        """Stop the worker, remove an unused early copy, restore PATH. Safe to call twice."""
        if self.worker is not None:
            self.worker.stop()
        if self._early_workdir is not None:
            shutil.rmtree(self._early_workdir, ignore_errors=True)
            self._early_workdir = None
        while self._cleanups:
            self._cleanups.pop()()

    def _point_dbt_projects_at_own_manifests(self) -> None:
        """A ``target/manifest.json`` the plugin could not write (a read-only checkout): the
        user's ``DbtProject`` of that project reads the plugin's manifest instead."""
        from pytest_dbt_assets.user_manifest import point_dbt_projects_at

        unwritten = {
            prepared.user_manifest: prepared.user_text
            for prepared in (self.prepared, *self.prepared_others.values())
            if prepared is not None and not isinstance(prepared, DbtAssetsError) and prepared.user_manifest_problem
        }
        if unwritten:
            self._cleanups.append(point_dbt_projects_at(unwritten))

    @property
    def cache_problem(self) -> str | None:
        """Why the manifest cache could not be used (each session then parses), or None."""
        prepared = self.prepared
        return None if prepared is None or isinstance(prepared, DbtAssetsError) else prepared.cache_problem

    def manifest_problem(self) -> str | None:
        """Why the user's ``target/manifest.json`` is not the plugin's, or None."""
        prepared = self.prepared
        if isinstance(prepared, DbtAssetsError):
            return (
                f"The plugin could not make {self.settings.project_dir}/target/manifest.json, which your "
                f"Dagster modules read at import:\n{type(prepared).__name__}: {prepared}"
            )
        return prepared.user_manifest_problem if prepared is not None else None

    def explain_import_failure(self, error_text: str) -> str | None:
        """The plugin's words for a user module that failed to import because of the manifest
        the plugin could not write, or of the environment (no dbt); None for any other error."""
        from pytest_dbt_assets.definitions import environment_problem

        def lines_with(needle: str) -> list[str]:
            # pytest's "E   " prefix and pydantic's "Value error, " ... " [type=...]" wrapping removed
            found = [re.sub(r"^E\s+", "", line.strip()) for line in error_text.splitlines() if needle in line]
            return [re.sub(r"\s*\[type=[^\]]*\]$", "", line).removeprefix("Value error, ") for line in found]

        problem = self.manifest_problem()
        if problem is not None and lines_with("manifest.json"):
            return f"{lines_with('manifest.json')[-1]}\n{problem}"
        if lines_with("not found on PATH"):
            fix = environment_problem(RuntimeError(lines_with("not found on PATH")[-1]))
            if fix is not None:
                return f"{lines_with('not found on PATH')[-1]}\n{fix}"
        return None

    # -- the sequence ----------------------------------------------------------------------

    def build_project(self, workdir: Path) -> DbtAssetsProject:
        """The user's dbt project copied into ``workdir`` (an empty folder), with the plugin's
        manifest and a DuckDB-only profile; the worker, if launched, starts parsing it.

        Raises:
            ProjectNotFoundError: no dbt project was found or configured.
            DbtParseError: dbt could not parse it (kept from :meth:`start`).
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.manifest import load_manifest, write_user_manifest
        from pytest_dbt_assets.project import attach_pinned_databases, build_project

        settings, prepared = self.settings, self.prepared
        if settings.project_dir is None:
            searched = (
                f", and the package of {settings.definitions} has no DbtProject(project_dir=...) or "
                "DbtCliResource(project_dir=...) naming one in a form the plugin reads without importing it"
                if settings.definitions is not None
                else ""
            )
            raise ProjectNotFoundError(
                f"No dbt project to test: the rootdir {settings.rootdir} holds no dbt_project.yml{searched}. "
                "Set `dbt_assets_project_dir` in [tool.pytest.ini_options] (or pass "
                "--dbt-assets-project-dir) to the folder that holds it."
            )
        if isinstance(prepared, DbtAssetsError):
            raise prepared.with_traceback(None)
        project = self._take_early_copy(workdir) or build_project(settings.project_dir, workdir, self._backend())
        if prepared is not None:
            prepared.install(project)
        else:  # start() was not called (the plugin was registered too late): parse here
            load_manifest(project, cache_folder(settings.project_dir))
            write_user_manifest(project)
        self._build_other_projects(project, workdir)
        attach_pinned_databases(project)
        if self.worker is not None:  # launched at collection: let it parse while Dagster loads
            for each in project.all_projects:
                self.worker.prepare_build(each)
        return project

    def _build_other_projects(self, project: DbtAssetsProject, workdir: Path) -> None:
        """Each further dbt project of the code location copied into
        ``workdir/projects/<name>/`` with its own profile and the plugin's manifest, all
        targeting ``project``'s database (:func:`project.share_database`)."""
        __tracebackhide__ = True
        from pytest_dbt_assets.manifest import load_manifest, write_user_manifest
        from pytest_dbt_assets.project import build_project, share_database

        others = []
        for project_dir in self.settings.project_dirs[1:]:
            prepared = self.prepared_others.get(project_dir)
            if isinstance(prepared, DbtAssetsError):
                raise prepared.with_traceback(None)
            folder = workdir / "projects" / project_dir.name
            folder.mkdir(parents=True)
            other = build_project(project_dir, folder, self._backend())
            if prepared is not None:
                prepared.install(other)
            else:
                load_manifest(other, cache_folder(project_dir))
                write_user_manifest(other)
            others.append(other)
        share_database(project, others)

    def build_projects(self, workdir: Path) -> dict[str, DbtAssetsProject]:
        """:meth:`build_project`, as dbt project name -> temporary project: one entry per dbt
        project of the code location, every one targeting the first one's database."""
        __tracebackhide__ = True
        project = self.build_project(workdir)
        return {each.project_name: each for each in project.all_projects}

    @staticmethod
    def single_project(projects: Mapping[str, DbtAssetsProject]) -> DbtAssetsProject:
        """The only project of ``projects``.

        Raises:
            SeveralProjectsError: the code location has several dbt projects.
        """
        __tracebackhide__ = True
        if len(projects) == 1:
            return next(iter(projects.values()))
        names = ", ".join(sorted(projects))
        first = min(projects)
        raise SeveralProjectsError(
            f"The code location has {len(projects)} dbt projects ({names}), each on its own temporary "
            "copy: dbt_assets_project is for a code location with one. Ask for dbt_assets_projects "
            f'instead, a mapping of dbt project name to project (e.g. dbt_assets_projects["{first}"]'
            ".dbt(...)); their query() runs on the one test database they share."
        )

    @staticmethod
    def main_project(projects: Mapping[str, DbtAssetsProject]) -> DbtAssetsProject:
        """The project :meth:`build_projects` built first: it holds the others and the database."""
        return next(iter(projects.values()))

    def _take_early_copy(self, workdir: Path) -> DbtAssetsProject | None:
        """The copy :meth:`start` parsed in, moved into ``workdir``, instead of a second copy.

        Safe because it is the copy ``build_project`` would make of the same source with the
        same settings (settings resolve once per session; the parse's own folders are removed
        in ``prepare_manifest``), and the manifest installed next was made from exactly these
        files, where a later copy would hold whatever changed in the tree since. Only the
        profile holds a path of the old folder, so it is written again. Taken once; when the
        folders are on two file systems (``--basetemp`` elsewhere) it is copied afresh.
        """
        from pytest_dbt_assets.project import DbtAssetsProject, write_profiles_yml

        prepared, early_workdir, source_dir = self.prepared, self._early_workdir, self.settings.project_dir
        early = getattr(prepared, "copy", None)
        if early is None or early_workdir is None or source_dir is None or early.source_dir != source_dir.resolve():
            return None
        self._early_workdir = None
        try:
            os.rename(early.project_dir, workdir / early.project_dir.name)
        except OSError:
            return None
        finally:
            shutil.rmtree(early_workdir, ignore_errors=True)
        profiles_dir = workdir / early.profiles_dir.name
        profiles_dir.mkdir()
        duckdb_path = early.backend.main_file(workdir)
        write_profiles_yml(profiles_dir, early.profile_name, duckdb_path, backend=early.backend)
        return DbtAssetsProject(
            source_dir=early.source_dir,
            project_dir=workdir / early.project_dir.name,
            profiles_dir=profiles_dir,
            duckdb_path=duckdb_path,
            profile_name=early.profile_name,
            project_name=early.project_name,
            backend=early.backend,
        )

    def load_definitions(self, project: DbtAssetsProject) -> Definitions:
        """The ``Definitions`` under test (``dbt_assets_definitions``, or ``@dbt_assets`` built
        from the manifest), with every ``DbtCliResource`` and ``DbtProject`` pointed at
        ``project``.

        Raises:
            DefinitionsError: they cannot be imported, or an ``@dbt_assets`` was built from
                another manifest than the plugin's.
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.definitions import build_default_definitions, import_definitions, validate_same_manifest
        from pytest_dbt_assets.relocate import relocate_definitions

        spec = self.settings.definitions
        if spec is None and project.others:
            raise DefinitionsError(
                f"{len(project.all_projects)} dbt projects are configured "
                f"({', '.join(str(each.source_dir) for each in project.all_projects)}) and no Dagster "
                "definitions: the plugin builds default @dbt_assets for one dbt project only. Set "
                "dbt_assets_definitions in [tool.pytest.ini_options] to the `package.module:attr` of the "
                "Definitions holding their @dbt_assets."
            )
        with quiet_upstream():
            if spec is None:
                defs = build_default_definitions(project)
            else:
                defs = import_definitions(spec, self.settings.rootdir)
                for each in project.all_projects:
                    problem = (
                        self.manifest_problem()
                        if each is project
                        else getattr(self.prepared_others.get(each.source_dir), "user_manifest_problem", None)
                    )
                    validate_same_manifest(defs, each, spec, problem)
            return relocate_definitions(defs, project)

    @staticmethod
    def build_graph(defs: Definitions) -> AssetGraph:
        """The resolved asset graph of ``defs`` as plain sorted data."""
        from pytest_dbt_assets.graph import build_asset_graph

        with quiet_upstream():
            return build_asset_graph(defs)

    # -- the dbt worker --------------------------------------------------------------------

    def spawn_worker(self) -> None:
        """Start the dbt worker's process before :meth:`start`, so that its dbt imports overlap
        the session's own start-up (the parse, the conftest and test imports); it serves once
        :meth:`launch_worker` gives it its folder, and :meth:`discard_unused_worker` stops it
        when no test needs it. Nothing with the subprocess runner or without a dbt project."""
        if self.settings.runner == "subprocess" or self.settings.project_dir is None or self.worker is not None:
            return
        self.worker = self._new_worker()
        self.worker.spawn()

    def _new_worker(self) -> DbtWorker:
        """An unstarted worker keeping dbt's partial-parse files in the project's cache."""
        from pytest_dbt_assets.dbt.worker import DbtWorker

        project_dir = self.settings.project_dir
        return DbtWorker(cache_dir=cache_folder(project_dir) / "partial_parse" if project_dir else None)

    def discard_unused_worker(self) -> None:
        """Stop a worker :meth:`spawn_worker` started that no collected test needs."""
        if self.worker is not None and not self.worker.launched:
            self.worker.stop()
            self.worker = None

    def launch_worker(self, basetemp: Path, make_folder: Callable[[str], Path]) -> DbtWorker | None:
        """The session's dbt worker, launched on first call; None with the subprocess runner.

        ``make_folder(prefix)`` makes its folder (under ``basetemp``, removed at the end of the
        session); folders that killed sessions left behind in ``basetemp``'s root go first."""
        if self.settings.runner == "subprocess":
            return None
        if self.worker is None or not self.worker.launched:
            from pytest_dbt_assets.dbt.worker import FOLDER_PREFIX, remove_stale_folders

            if self.worker is None:
                self.worker = self._new_worker()
            remove_stale_folders(basetemp)
            self.worker.seed = getattr(self.prepared, "early_parse", None)  # start from the start-up parse
            self.worker.launch(make_folder(FOLDER_PREFIX))
        return self.worker

    def dbt_executable(self, project: DbtAssetsProject) -> str | None:
        """The worker's client, ready for ``project``; without a worker, the backend's own
        ``dbt`` (None: the resource's).

        Raises:
            DbtWorkerError: the worker did not start.
        """
        if self.worker is None:
            return project.backend.dbt_executable(project.project_dir.parent)
        self.worker.prepare_build(project)
        self.worker.wait_ready()
        return str(self.worker.executable)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    # -- materializing ---------------------------------------------------------------------

    def materialize(
        self,
        defs: Definitions,
        project: DbtAssetsProject,
        *,
        select: Any = None,
        dbt_select: str | Sequence[str] | None = None,
        vars: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        indirect_selection: str | None = None,
        raise_on_error: bool = True,
        data: Mapping[str, Any] | None = None,
        dbt_executable: str | None = None,
        baseline_folder: Path | None = None,
    ) -> Materialization:
        """:func:`materialize.materialize_assets` with the session's data folder and worker:
        a worker that died before the call is restarted (with a ``DbtWorkerRestartedWarning``);
        one that died during a failed call is named among its failures.

        With ``baseline_folder`` (the folder the run's processes share templates in), the
        database first becomes a copy of the session baseline (built there on first use, see
        :mod:`baseline`), the selected relations are dropped from it, and only the selection
        is built, on the baseline's upstream relations.

        Raises:
            MaterializationError: with ``raise_on_error``, when anything failed.
            BaselineError: the baseline could not be built, or the test's source rows are
                ones the baseline already loaded.
            DbtAssetsError: the selection, a partition or source data is wrong.
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.materialize import materialize_assets

        prepare_database = None
        if baseline_folder is not None:
            prepare_database = self._baseline_preparer(
                defs, project, baseline_folder, resources=resources, data=data, dbt_executable=dbt_executable
            )
        if self.worker is not None and (what_happened := self.worker.ensure_running()) is not None:
            # stacklevel: this method, the fixture's callable, the test that called it.
            warnings.warn(DbtWorkerRestartedWarning(what_happened), stacklevel=3)
        try:
            with quiet_upstream():
                materialization = materialize_assets(
                    defs,
                    project,
                    select=select,
                    dbt_select=dbt_select,
                    vars=vars,
                    resources=resources,
                    partition_key=partition_key,
                    indirect_selection=indirect_selection,
                    raise_on_error=raise_on_error,
                    data=data,
                    data_dir=self.settings.data_dir,
                    dbt_executable=dbt_executable,
                    prepare_database=prepare_database,
                )
        except DbtAssetsError as error:
            self._note_worker_death(error)
            raise
        self._note_worker_death(materialization)
        return materialization

    def _baseline_preparer(
        self,
        defs: Definitions,
        project: DbtAssetsProject,
        folder: Path,
        *,
        resources: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        dbt_executable: str | None,
    ) -> Callable[[set[Any], Any], None]:
        """What puts the session baseline in place for a selection: the template (built with
        this call's resources when no run has built it for the same content), copied into the
        test database, the selected relations dropped from it.

        Templates are kept in the manifest cache (``<dbt project>/target/dbt_assets_cache/``)
        for later runs; in ``folder``, the run's, when that cache cannot be used or the code
        cannot be hashed. A failed build is remembered in ``folder`` only."""
        from pytest_dbt_assets.baseline import (
            baseline_key,
            code_fingerprint,
            copy_template,
            ensure_template,
            refuse_overlapping_data,
        )
        from pytest_dbt_assets.database import drop_relations
        from pytest_dbt_assets.materialize import build_baseline, selected_relations

        settings = self.settings

        def prepare(selected: set[Any], nodes: DbtNodes) -> None:
            __tracebackhide__ = True
            if self._baseline_key is None:  # what it hashes does not change during a session
                code = code_fingerprint(settings.rootdir)
                self._baseline_key = baseline_key(
                    project, settings.baseline_select, settings.data_dir, settings.definitions, code
                )
                cache_usable = self.prepared is not None and self.cache_problem is None
                if code is not None and cache_usable and settings.project_dir is not None:
                    self._baseline_store = cache_folder(settings.project_dir)
            key = self._baseline_key

            def build() -> list[str]:
                return build_baseline(
                    defs,
                    project,
                    dbt_select=settings.baseline_select,
                    resources=resources,
                    data_dir=settings.data_dir,
                    dbt_executable=dbt_executable,
                )

            store = self._baseline_store or folder
            template, built_here = ensure_template(
                store, key, project, settings.baseline_select, build, run_folder=folder
            )
            refuse_overlapping_data(template, data or {}, "baseline=True")
            if not built_here:
                copy_template(template, project)
            drop_relations(project.duckdb_path, project.attached_databases, selected_relations(nodes, selected))

        return prepare

    def _note_worker_death(self, outcome: Any) -> None:
        """After a failed call (a Materialization or MaterializationError): if the worker died
        during it, say so among its failures, not only dbt's exit code."""
        failures = getattr(outcome, "failures", None)
        if self.worker is None or failures is None or getattr(outcome, "success", False):
            return
        if (what_happened := self.worker.death_during_call()) is not None:
            failures.append(what_happened)
            if isinstance(outcome, Exception) and outcome.args:
                outcome.args = (f"{outcome.args[0]}\n- {what_happened}", *outcome.args[1:])


# What ``@pytest.mark.dbt_assets(...)`` takes, all by keyword (see :func:`validate_marker`).
MARKER_KEYWORDS = ("select", "dbt_select", "vars", "data", "indirect_selection", "row_tolerance", "baseline")


def validate_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise :class:`MarkerError` when the marker's arguments are not :data:`MARKER_KEYWORDS`
    (a misspelt keyword would otherwise be silently ignored).

    Raises:
        MarkerError: a positional argument, or a keyword the marker does not take.
    """
    __tracebackhide__ = True
    import difflib

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
    from pytest_dbt_assets.errors import BaselineError

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


def source_rows(fixture: Mapping[str, Any], marker: Mapping[str, Any]) -> dict[str, Any]:
    """Source rows for a test: the ``dbt_assets_data`` fixture's, with the marker's ``data=``
    winning table by table."""
    return {**fixture, **(marker.get("data") or {})}


class SnapshotKeeper:
    """Failed tests that use the plugin's fixtures keep their snapshots under ``--snapshot-update``.

    ``protect(nodeids)`` at collection names the tests concerned; ``failed(nodeid)`` runs after
    syrupy has recorded a failed set-up or call report, and has ``record_skipped(nodeid)``
    (:func:`compat.record_as_skipped`) tell syrupy the test was skipped, whose snapshots it
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
