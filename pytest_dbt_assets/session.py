"""The session's sequence, without pytest: prepare the manifest, build the temporary projects,
load and relocate the definitions, build the graph, materialize.

Like syrupy's ``SnapshotSession``, one :class:`DbtAssetsSession` per pytest session owns the
sequence and its state, and hands each step to the collaborator that does it: the
:class:`~pytest_dbt_assets.workspace.Workspace` (the temporary projects), ``definitions``,
the :class:`~pytest_dbt_assets.dbt.supervisor.WorkerSupervisor` (the dbt worker), the
:class:`~pytest_dbt_assets.baseline.BaselineStore` and ``materialize``. ``plugin.py``'s hooks
and ``fixtures.py`` hand straight to it, and ``benchmarks/same_session.py`` drives the same
object. Everything it takes is plain: resolved :class:`~pytest_dbt_assets.settings.Settings`,
paths, mappings.

The definitions' and the materialization's modules are imported where first used: the
plugin makes a session in every pytest session of the user, most of which never load the
definitions (no dbt project, ``--help``) or never materialize (a graph-only run).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.baseline import BaselineStore
from pytest_dbt_assets.cache import cache_folder
from pytest_dbt_assets.dbt.supervisor import WorkerSupervisor, put_dbt_on_path
from pytest_dbt_assets.errors import DbtWorkerRestartedWarning
from pytest_dbt_assets.graph import AssetGraph, build_asset_graph
from pytest_dbt_assets.import_failure import explain_import_failure
from pytest_dbt_assets.quiet import quiet_upstream
from pytest_dbt_assets.settings import Settings
from pytest_dbt_assets.workspace import Workspace, main_project

if TYPE_CHECKING:
    from dagster import Definitions

    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject


class DbtAssetsSession:
    """One test session's dbt projects, definitions, dbt worker and baseline.

    Call :meth:`start` as early as possible (before any user module is imported), then
    :meth:`build_projects`, :meth:`load_definitions`, :meth:`build_graph` and
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
        self.workspace = Workspace(settings)
        project_dir = settings.project_dir
        self.supervisor = WorkerSupervisor(
            enabled=settings.runner != "subprocess" and project_dir is not None,
            cache_dir=cache_folder(project_dir, settings.cache_dir) / "partial_parse" if project_dir else None,
        )
        self.baseline: BaselineStore | None = None  # made on the first test that asks for it
        self._cleanups: list[Callable[[], None]] = []

    # -- start-up and end ------------------------------------------------------------------

    def start(self) -> None:
        """Find a ``dbt`` installed beside Python, and make each dbt project's
        ``target/manifest.json`` the plugin's. A parse error is kept for the fixtures to
        report, where tests can show it; nothing is raised. No dbt project: nothing to do."""
        if self.settings.project_dir is None:
            return
        if (restore := put_dbt_on_path()) is not None:
            self._cleanups.append(restore)
        self.workspace.prepare()

    def explain_import_failure(self, error_text: str) -> str | None:
        """The plugin's words for a user module that failed to import because of the manifest
        the plugin could not write, or of the environment (no dbt); None for any other error."""
        return explain_import_failure(error_text, self.workspace.manifest_problem())

    def close(self) -> None:
        """Stop the worker, remove an unused early copy, restore PATH. Safe to call twice."""
        self.supervisor.stop()
        self.workspace.close()
        while self._cleanups:
            self._cleanups.pop()()

    # -- the sequence ----------------------------------------------------------------------

    def build_projects(self, workdir: Path) -> dict[str, DbtAssetsProject]:
        """Every dbt project of the code location copied into ``workdir`` (see
        :meth:`Workspace.build`); a launched worker starts parsing them."""
        __tracebackhide__ = True
        projects = self.workspace.build(workdir)
        self.supervisor.prepare(projects.values())  # it parses while Dagster loads
        return projects

    def build_project(self, workdir: Path) -> DbtAssetsProject:
        """:meth:`build_projects`' main project: the only one, in most code locations."""
        __tracebackhide__ = True
        return main_project(self.build_projects(workdir))

    def load_definitions(self, project: DbtAssetsProject) -> Definitions:
        """The ``Definitions`` under test (see :func:`definitions.load_definitions`), with every
        ``DbtCliResource`` and ``DbtProject`` pointed at ``project`` (the main one, holding the
        others) by :func:`relocate.relocate_definitions`.

        Raises:
            DefinitionsError: they cannot be imported, or were built from another manifest.
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.definitions import load_definitions
        from pytest_dbt_assets.relocate import relocate_definitions

        settings = self.settings
        with quiet_upstream():
            defs = load_definitions(settings.definitions, settings.rootdir, project, self.workspace.manifest_problem)
            return relocate_definitions(defs, project)

    @staticmethod
    def build_graph(defs: Definitions) -> AssetGraph:
        """The resolved asset graph of ``defs`` as plain sorted data."""
        with quiet_upstream():
            return build_asset_graph(defs)

    # -- the dbt worker --------------------------------------------------------------------

    def launch_worker(self, basetemp: Path, make_folder: Callable[[str], Path]) -> DbtWorker | None:
        """The session's dbt worker, launched on first call (see :meth:`WorkerSupervisor.launch`),
        its first parse starting from the start-up parse; None with the subprocess runner."""
        return self.supervisor.launch(basetemp, make_folder, seed=getattr(self.workspace.prepared, "early_parse", None))

    def dbt_executable(self, project: DbtAssetsProject) -> str | None:
        """The worker's client, ready for ``project``; without a worker, the backend's own
        ``dbt`` (None: the resource's).

        Raises:
            DbtWorkerError: the worker did not start.
        """
        executable = self.supervisor.executable_for(project)
        return executable if executable is not None else project.backend.dbt_executable(project.project_dir.parent)

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
        """Materialize a selection of ``defs`` on ``project``'s database: resolve the selection
        once (:func:`selection.plan_run`), put the session baseline in place when
        ``baseline_folder`` is given (the folder the run's processes share templates in; see
        :mod:`baseline`: only the selection is then built, on the baseline's upstream), run
        and describe it (:func:`materialize.materialize_plan`).

        A worker that died before the call is restarted (with a ``DbtWorkerRestartedWarning``);
        one that died during a failed call is named among its failures.

        Raises:
            MaterializationError: with ``raise_on_error``, when anything failed.
            BaselineError: the baseline could not be built, or the test's source rows are
                ones the baseline already loaded.
            DbtAssetsError: the selection, a partition or source data is wrong.
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.materialize import build_baseline, materialize_plan
        from pytest_dbt_assets.selection import plan_run

        if (restarted := self.supervisor.restart_if_dead()) is not None:
            # stacklevel: this method, the fixture's callable, the test that called it.
            warnings.warn(DbtWorkerRestartedWarning(restarted), stacklevel=3)
        settings = self.settings
        with quiet_upstream():
            plan = plan_run(
                defs, select, dbt_select, partition_key=partition_key, indirect_selection=indirect_selection
            )
            if baseline_folder is not None:
                self._baseline_store().start_from(
                    project,
                    baseline_folder,
                    lambda: build_baseline(
                        defs,
                        project,
                        dbt_select=settings.baseline_select,
                        resources=resources,
                        data_dir=settings.data_dir,
                        dbt_executable=dbt_executable,
                    ),
                    data=data or {},
                    drop=plan.relations,
                )
            materialization = materialize_plan(
                defs,
                project,
                plan,
                vars=vars,
                resources=resources,
                partition_key=partition_key,
                indirect_selection=indirect_selection,
                data=data,
                data_dir=settings.data_dir,
                dbt_executable=dbt_executable,
            )
        if not materialization.success and (death := self.supervisor.death_during_call()) is not None:
            materialization.failures.append(death)
        if raise_on_error and (error := materialization.error()) is not None:
            raise error
        return materialization

    def _baseline_store(self) -> BaselineStore:
        """The session's baseline store: templates kept in the manifest cache when it is usable."""
        if self.baseline is None:
            settings, workspace = self.settings, self.workspace
            cache_usable = workspace.prepared is not None and workspace.cache_problem is None
            self.baseline = BaselineStore(
                settings.rootdir,
                select=settings.baseline_select,
                data_dir=settings.data_dir,
                definitions=settings.definitions,
                cache_dir=cache_folder(settings.project_dir, settings.cache_dir)
                if cache_usable and settings.project_dir
                else None,
            )
        return self.baseline
