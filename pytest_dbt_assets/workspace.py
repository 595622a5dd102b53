"""The session's temporary dbt projects: the start-up parse of each dbt project of the code
location (whose ``target/manifest.json`` the user's modules read at import), then their
copies under pytest's basetemp, each with the plugin's profile and manifest, all on one test
database. pytest-free: settings, paths and folders in, projects out.

The project, manifest and warehouse modules (YAML, dbt's runner) are imported where first
used: the plugin makes a workspace in every pytest session of the user, and most of them
test no dbt project.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_dbt_assets.cache import cache_folder
from pytest_dbt_assets.compat import dagster_dbt as dagster_dbt_compat
from pytest_dbt_assets.errors import DbtAssetsError, ProjectNotFoundError, SeveralProjectsError
from pytest_dbt_assets.owner import make_temp_folder
from pytest_dbt_assets.quiet import quiet_upstream
from pytest_dbt_assets.settings import Settings
from pytest_dbt_assets.user_manifest import point_dbt_projects_at

if TYPE_CHECKING:
    from pytest_dbt_assets.manifest import PreparedManifest
    from pytest_dbt_assets.project import DbtAssetsProject
    from pytest_dbt_assets.warehouse import Backend


class Workspace:
    """The temporary dbt projects of one session.

    :meth:`prepare` runs in pytest's first hook: it chooses the warehouse backend and makes
    each dbt project's ``target/manifest.json`` the plugin's; what goes wrong is kept, not
    raised, for :meth:`build` to report where tests show it. :meth:`build` copies the projects
    into a folder of pytest's basetemp.

    Example:
        >>> workspace = Workspace(settings)
        >>> workspace.prepare()
        >>> projects = workspace.build(Path("/tmp/work"))
        >>> main_project(projects).duckdb_path
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The manifest made by prepare(), or why it could not be made; None before prepare().
        self.prepared: PreparedManifest | DbtAssetsError | None = None
        # The same for each further dbt project of the code location (settings.project_dirs[1:]).
        self.prepared_others: dict[Path, PreparedManifest | DbtAssetsError] = {}
        # How the test database is served (chosen by prepare()), or why it cannot be.
        self.backend: Backend | DbtAssetsError | None = None
        self.early_workdir: Path | None = None  # the folder of the copy prepare() parsed in
        self._restore_dbt_project: Callable[[], None] | None = None

    def prepare(self) -> None:
        """Choose the backend and make each dbt project's ``target/manifest.json`` the
        plugin's. The main project's parse copy is kept for :meth:`build`. No dbt project:
        nothing to do."""
        if self.settings.project_dir is None:
            return
        from pytest_dbt_assets.manifest import prepare_manifest
        from pytest_dbt_assets.warehouse import choose_backend

        try:
            self.backend = choose_backend(self.settings.project_dir, self.settings.rootdir, self.settings.warehouse)
        except DbtAssetsError as error:
            self.backend = self.prepared = error
            return
        self.early_workdir = make_temp_folder()
        try:
            with quiet_upstream():  # dbt is imported here: its tracking library's root log handler goes
                self.prepared = prepare_manifest(
                    self.settings.project_dir, self.early_workdir, self.backend, self.settings.cache_dir
                )
        except DbtAssetsError as error:
            self.prepared = error
        finally:
            dagster_dbt_compat.forget_dagster_dbt_manifests()
        for project_dir in self.settings.project_dirs[1:]:
            try:
                self.prepared_others[project_dir] = prepare_manifest(
                    project_dir, backend=self.served_by, cache_root=self.settings.cache_dir
                )
            except DbtAssetsError as error:
                self.prepared_others[project_dir] = error
            finally:
                dagster_dbt_compat.forget_dagster_dbt_manifests()
        self._point_dbt_projects_at_own_manifests()

    def _point_dbt_projects_at_own_manifests(self) -> None:
        """A ``target/manifest.json`` the plugin could not write (a read-only checkout): the
        user's ``DbtProject`` of that project reads the plugin's manifest instead, until
        :meth:`close`."""
        unwritten = {
            prepared.user_manifest: prepared.user_text
            for prepared in (self.prepared, *self.prepared_others.values())
            if prepared is not None and not isinstance(prepared, DbtAssetsError) and prepared.user_manifest_problem
        }
        if unwritten:
            self._restore_dbt_project = point_dbt_projects_at(unwritten)

    @property
    def served_by(self) -> Backend | None:
        """The backend :meth:`prepare` chose (None before it, or when it could not choose)."""
        return None if isinstance(self.backend, DbtAssetsError) else self.backend

    def foreign_note(self) -> str | None:
        """The sentence for a project on an adapter the plugin does not serve, or None."""
        backend = self.served_by
        if backend is None:
            return None
        from pytest_dbt_assets.warehouse import foreign_note

        return foreign_note(backend.target)

    @property
    def cache_problem(self) -> str | None:
        """Why the manifest cache could not be used (each session then parses), or None."""
        prepared = self.prepared
        return None if prepared is None or isinstance(prepared, DbtAssetsError) else prepared.cache_problem

    def manifest_problem(self, source_dir: Path | None = None) -> str | None:
        """Why the user's ``target/manifest.json`` (of the main dbt project, or of
        ``source_dir``'s) is not the plugin's, or None."""
        if source_dir is not None and source_dir != self.settings.project_dir:
            return getattr(self.prepared_others.get(source_dir), "user_manifest_problem", None)
        prepared = self.prepared
        if isinstance(prepared, DbtAssetsError):
            return (
                f"The plugin could not make {self.settings.project_dir}/target/manifest.json, which your "
                f"Dagster modules read at import:\n{type(prepared).__name__}: {prepared}"
            )
        return prepared.user_manifest_problem if prepared is not None else None

    def build(self, workdir: Path) -> dict[str, DbtAssetsProject]:
        """Every dbt project of the code location copied under ``workdir`` (an empty folder),
        as dbt project name -> temporary project, the main one first (it holds the others,
        under ``workdir/projects/<name>/``, and the database they share).

        Raises:
            ProjectNotFoundError: no dbt project was found or configured.
            DbtParseError: dbt could not parse one (kept from :meth:`prepare`).
        """
        __tracebackhide__ = True
        from pytest_dbt_assets.project import attach_pinned_databases, build_project, share_database

        settings, prepared = self.settings, self.prepared
        if settings.project_dir is None:
            raise missing_project_error(settings)
        if isinstance(prepared, DbtAssetsError):
            raise prepared.with_traceback(None)
        project = self._take_early_copy(workdir) or build_project(settings.project_dir, workdir, self.served_by)
        _install_manifest(project, prepared, self.settings.cache_dir)
        others = []
        for project_dir in settings.project_dirs[1:]:
            prepared_other = self.prepared_others.get(project_dir)
            if isinstance(prepared_other, DbtAssetsError):
                raise prepared_other.with_traceback(None)
            folder = workdir / "projects" / project_dir.name
            folder.mkdir(parents=True)
            other = build_project(project_dir, folder, self.served_by)
            _install_manifest(other, prepared_other, self.settings.cache_dir)
            others.append(other)
        share_database(project, others)
        attach_pinned_databases(project)
        return {each.project_name: each for each in project.all_projects}

    def _take_early_copy(self, workdir: Path) -> DbtAssetsProject | None:
        """The copy :meth:`prepare` parsed in, moved into ``workdir`` (taken once)."""
        early_workdir, self.early_workdir = self.early_workdir, None
        if early_workdir is None or self.settings.project_dir is None:
            return None
        try:
            return take_early_copy(self.prepared, self.settings.project_dir, workdir)
        finally:
            shutil.rmtree(early_workdir, ignore_errors=True)

    def close(self) -> None:
        """Remove the start-up parse's copy when no project took it; ``DbtProject`` reads its
        manifest where it did. Safe to call twice."""
        if self.early_workdir is not None:
            shutil.rmtree(self.early_workdir, ignore_errors=True)
            self.early_workdir = None
        if self._restore_dbt_project is not None:
            self._restore_dbt_project()
            self._restore_dbt_project = None


def _install_manifest(project: DbtAssetsProject, prepared: PreparedManifest | None, cache_root: Path | None) -> None:
    """The start-up parse's manifest installed in ``project``; without one (the plugin was
    registered after pytest's first hook), a parse here."""
    from pytest_dbt_assets.manifest import load_manifest, write_user_manifest

    if prepared is not None:
        prepared.install(project)
    else:
        load_manifest(project, cache_folder(project.source_dir, cache_root))
        write_user_manifest(project)


def take_early_copy(prepared: object, source_dir: Path, workdir: Path) -> DbtAssetsProject | None:
    """The copy the start-up parse of ``source_dir`` was made in (``prepared.copy``), moved
    into ``workdir``, instead of a second copy; None when there is none, or when the folders
    are on two file systems (``--basetemp`` elsewhere): the caller then copies afresh.

    Safe because it is the copy ``build_project`` would make of the same source with the
    same settings (settings resolve once per session; the parse's own folders are removed
    in ``prepare_manifest``), and the manifest installed next was made from exactly these
    files, where a later copy would hold whatever changed in the tree since. Only the
    profile holds a path of the old folder, so it is written again.
    """
    from pytest_dbt_assets.project import DbtAssetsProject, write_profiles_yml

    early = getattr(prepared, "copy", None)
    if early is None or early.source_dir != source_dir.resolve():
        return None
    try:
        os.rename(early.project_dir, workdir / early.project_dir.name)
    except OSError:
        return None
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


def missing_project_error(settings: Settings) -> ProjectNotFoundError:
    """No dbt project found or configured: where the plugin looked, and the setting to fix it."""
    searched = (
        f", and the package of {settings.definitions} has no DbtProject(project_dir=...) or "
        "DbtCliResource(project_dir=...) naming one in a form the plugin reads without importing it"
        if settings.definitions is not None
        else ""
    )
    return ProjectNotFoundError(
        f"No dbt project to test: the rootdir {settings.rootdir} holds no dbt_project.yml{searched}. "
        "Set `dbt_assets_project_dir` in [tool.pytest.ini_options] (or pass "
        "--dbt-assets-project-dir) to the folder that holds it."
    )


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


def main_project(projects: Mapping[str, DbtAssetsProject]) -> DbtAssetsProject:
    """The project :meth:`Workspace.build` built first: it holds the others and the database."""
    return next(iter(projects.values()))
