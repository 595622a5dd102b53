"""The user's dbt project, copied to a temporary folder with a throwaway profile whose only
target is the test database (DuckDB files, served as the project's warehouse: see
:mod:`pytest_dbt_assets.warehouse`).

Nothing here imports pytest: the fixtures in ``plugin.py`` only call :func:`build_project`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_dbt_assets.dbt.runner import describe_dbt_failure, run_dbt
from pytest_dbt_assets.errors import DbtCommandError, DefinitionsError, ProjectNotFoundError
from pytest_dbt_assets.isolation import run_read_only, validate_dbt_args
from pytest_dbt_assets.warehouse.base import Backend
from pytest_dbt_assets.warehouse.duckdb import DuckDBBackend

TARGET_NAME = "dbt_assets"

_SKIPPED_NAMES = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "profiles.yml",
    ".user.yml",
}
_SKIPPED_SUFFIXES = (".duckdb", ".duckdb.wal", ".db", ".db.wal")


@dataclass
class DbtAssetsProject:
    """A dbt project copied to a temporary folder, with a profile whose only target is the
    test database.

    Attributes:
        source_dir: the user's dbt project (read, never written, apart from ``target/``).
        project_dir: the temporary copy every dbt command runs against.
        profiles_dir: folder of the generated ``profiles.yml``.
        duckdb_path: the test database's DuckDB file (on Snowflake, the file of the profile's
            database, ``warehouse/<DATABASE>.db``).
        profile_name: profile name taken from ``dbt_project.yml``.
        manifest: the parsed manifest (dict), filled in by :func:`manifest.parse_project`.
        attached_databases: name -> DuckDB file of each database a source pins with
            ``database:``, attached in the generated profile (see :func:`attach_pinned_databases`).
        others: the code location's other dbt projects, each on its own temporary copy and
            profile, all targeting this project's DuckDB file (see :func:`share_database`).
        backend: how the test database is served in the project's SQL dialect.
    """

    source_dir: Path
    project_dir: Path
    profiles_dir: Path
    duckdb_path: Path
    profile_name: str
    project_name: str
    target_name: str = TARGET_NAME
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    attached_databases: dict[str, Path] = field(default_factory=dict)
    others: tuple[DbtAssetsProject, ...] = field(default=(), repr=False, compare=False)
    backend: Backend = field(default_factory=DuckDBBackend, repr=False, compare=False)

    @property
    def profile_identity(self) -> str:
        """What of the generated profile shapes a parse and the relations built: its name and
        the backend's dialect (the manifest cache and the session baseline key on it)."""
        return f"{self.profile_name} {self.backend.fingerprint_text()}"

    @property
    def sandbox(self) -> Path:
        """The folder (pytest's basetemp) outside which no test database may be opened."""
        return self.project_dir.parent.parent

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"

    @property
    def all_projects(self) -> tuple[DbtAssetsProject, ...]:
        """This project and the code location's other dbt projects."""
        return (self, *self.others)

    def counterpart(self, project_dir: Any = None, name: str | None = None) -> DbtAssetsProject:
        """The temporary project of the user's dbt project at ``project_dir`` (its folder, or
        its temporary copy's), else the one named ``name``; this project when none matches
        (with a single dbt project, every ``DbtCliResource`` and ``DbtProject`` is its).

        Raises:
            DefinitionsError: ``project_dir`` is another dbt project than those under test
                (its ``dbt_project.yml`` has another name): testing this one in its place
                would pass while wrong.
        """
        if project_dir is not None:
            folder = Path(project_dir).resolve()
            for project in self.all_projects:
                if folder in (project.source_dir, project.project_dir.resolve()):
                    return project
            self._validate_not_foreign(folder)
        if not self.others:
            return self
        for project in self.all_projects:
            if name is not None and name == project.project_name:
                return project
        return self

    def _validate_not_foreign(self, folder: Path) -> None:
        try:
            data = yaml.safe_load((folder / "dbt_project.yml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return  # not a dbt project (a packaged copy not made yet, a relative path)
        name = data.get("name") if isinstance(data, dict) else None
        if name is None or any(name == project.project_name for project in self.all_projects):
            return
        tested = ", ".join(f"{project.project_name} ({project.source_dir})" for project in self.all_projects)
        raise DefinitionsError(
            f"Your definitions use the dbt project {name!r} at {folder}, which is not under test "
            f"(the plugin tests {tested}). Set `dbt_assets_project_dir` in [tool.pytest.ini_options] "
            "to every dbt project of the code location (a TOML list), or leave it unset where the code "
            "names them (DbtProjectComponent, DbtProject(project_dir=...))."
        )

    def dbt(self, *args: str, target_path: Path | None = None) -> Any:
        """Run a dbt command in this process against the temporary project.

        The profile, target, project and target folders are passed as flags, so ``DBT_*``
        variables in the user's shell cannot redirect it, and flags in ``args`` that would
        (``--profiles-dir``, ``--profile``, ``--target``/``-t``, ``--project-dir``,
        ``--target-path``, ``--log-path``, ``--partial-parse-file-path``) are refused with
        :class:`DbtIsolationError` before dbt starts. Returns dbt's ``dbtRunnerResult``;
        raises :class:`DbtCommandError` with dbt's own error text when the command fails.

        Example:
            >>> dbt_assets_project.dbt("seed", "--select", "raw_customers")
        """
        __tracebackhide__ = True
        validate_dbt_args(args)
        result, errors = run_dbt(self, list(args), target_path=target_path)
        if not result.success:
            raise DbtCommandError(describe_dbt_failure(f"`dbt {' '.join(args)}`", self, result, errors))
        return result

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the temporary DuckDB file and return its rows; strictly read-only.

        The databases that sources pin (``attached_databases``) are attached read-only under
        their aliases. A write, ``SET``, ``ATTACH``, ``INSTALL``/``LOAD`` or any file access
        (``COPY ... TO``, ``EXPORT DATABASE``, ``read_csv``) raises :class:`ReadOnlyQueryError`.
        """
        __tracebackhide__ = True
        if not self.duckdb_path.exists():
            raise DbtCommandError(
                f"The temporary DuckDB database {self.duckdb_path.name} does not exist yet: nothing "
                "has been built in this test. Materialize something first (dbt_assets_materialize)."
            )
        return run_read_only(
            self.duckdb_path,
            self.attached_databases,
            self.backend.to_duckdb_sql(sql),
            parameters,
            search_path=self.backend.search_path,
        )

    def reset_database(self) -> None:
        """Delete the test database's files (and their write-ahead logs) so the next run
        starts empty."""
        self.backend.reset(self.duckdb_path, self.attached_databases)


def read_project_yml(project_dir: Path) -> dict[str, Any]:
    """Read ``dbt_project.yml``, raising :class:`ProjectNotFoundError` when it is missing."""
    path = project_dir / "dbt_project.yml"
    if not path.is_file():
        state = "" if project_dir.is_dir() else " (the folder does not exist)"
        raise ProjectNotFoundError(
            f"No dbt_project.yml found in {project_dir}{state}. Set `dbt_assets_project_dir` in "
            "[tool.pytest.ini_options] (or pass --dbt-assets-project-dir) to the folder that "
            "holds your dbt_project.yml." + describe_found_projects(project_dir)
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProjectNotFoundError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "name" not in data:
        raise ProjectNotFoundError(f"{path} has no `name:`; it is not a dbt project file.")
    return data


def find_dbt_projects(root: Path, depth: int = 2) -> list[Path]:
    """Folders under ``root`` (``depth`` levels at most) holding a dbt_project.yml, sorted.

    Installed packages (``dbt_packages/``), virtualenvs and VCS folders are not searched.
    """
    found: list[Path] = []
    if not root.is_dir() or depth < 1:
        return found
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name in _SKIPPED_NAMES or child.name in {"dbt_packages", "target", "logs"}:
            continue
        if child.name.startswith(".") or (child / "pyvenv.cfg").exists():
            continue
        if (child / "dbt_project.yml").is_file():
            found.append(child)
        found += find_dbt_projects(child, depth - 1)
    return found


def describe_found_projects(root: Path) -> str:
    """`` dbt projects under it: shop.`` (relative folders), or "" when there is none."""
    found = find_dbt_projects(root)
    if not found:
        return ""
    return " dbt projects under it: " + ", ".join(str(path.relative_to(root)) for path in found) + "."


def build_project(source_dir: Path, workdir: Path, backend: Backend | None = None) -> DbtAssetsProject:
    """Copy ``source_dir`` into ``workdir/project`` and write a profile whose only target is
    the test database, served by ``backend`` (DuckDB's when None).

    Build artefacts (``target/``, ``logs/``), virtualenvs, VCS folders, DuckDB files and the
    user's own ``profiles.yml`` are left behind; a vendored ``dbt_packages/`` is kept.
    """
    source_dir = source_dir.resolve()
    project_yml = read_project_yml(source_dir)
    project_dir = workdir / "project"
    skipped_dirs = {
        str(project_yml.get("target-path", "target")),
        str(project_yml.get("log-path", "logs")),
    }
    shutil.copytree(source_dir, project_dir, ignore=_ignore_for(source_dir, skipped_dirs))

    profile_name = str(project_yml.get("profile") or project_yml["name"])
    profiles_dir = workdir / "profiles"
    profiles_dir.mkdir()
    backend = backend or DuckDBBackend()
    duckdb_path = backend.main_file(workdir)
    write_profiles_yml(profiles_dir, profile_name, duckdb_path, backend=backend)
    return DbtAssetsProject(
        source_dir=source_dir,
        project_dir=project_dir,
        profiles_dir=profiles_dir,
        duckdb_path=duckdb_path,
        profile_name=profile_name,
        project_name=str(project_yml["name"]),
        backend=backend,
    )


def write_profiles_yml(
    profiles_dir: Path,
    profile_name: str,
    duckdb_path: Path,
    attached: dict[str, Path] | None = None,
    *,
    backend: Backend,
) -> None:
    """Write a profiles.yml whose only target is the test database at ``duckdb_path``, with
    the further databases of ``attached`` (name -> file), as ``backend`` serves them."""
    output = backend.profile_output(duckdb_path, attached or {})
    profile = {profile_name: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=True), encoding="utf-8")


def attach_pinned_databases(project: DbtAssetsProject) -> dict[str, Path]:
    """Give each further database the project names (sources pinned with ``database: X``;
    on Snowflake, models' databases too, see ``Backend.further_databases``) a file beside the
    test database, attached as ``X`` in the profile, so the production YAML works unchanged.
    Call it after the manifest is parsed and before dbt runs against the database.
    Several dbt projects sharing one database (``project.others``) attach the databases all
    of them pin, so each profile sees the same catalogs.
    """
    backend, catalog = project.backend, project.duckdb_path.stem.lower()
    names = {name for each in project.all_projects for name in backend.further_databases(each.manifest)}
    attached = {
        name: backend.database_file(project.duckdb_path, name) for name in sorted(names) if name.lower() != catalog
    }
    for each in project.all_projects:
        if attached != each.attached_databases:
            for path in attached.values():
                path.parent.mkdir(exist_ok=True)
            each.attached_databases = attached
            write_profiles_yml(each.profiles_dir, each.profile_name, each.duckdb_path, attached, backend=backend)
    return attached


def share_database(project: DbtAssetsProject, others: Sequence[DbtAssetsProject]) -> DbtAssetsProject:
    """Make ``others`` (the code location's other dbt projects, each a temporary copy with its
    own profile) target ``project``'s DuckDB file, and ``project`` know them.

    One database for the whole code location, as production has one warehouse: a project
    that reads another's models as sources finds them, one materialization covers them all,
    and every row count is read from one file. dbt commands run one at a time per
    materialization, so the file is never opened by two of them at once.
    """
    for other in others:
        other.duckdb_path = project.duckdb_path
        write_profiles_yml(
            other.profiles_dir, other.profile_name, other.duckdb_path, project.attached_databases, backend=other.backend
        )
    project.others = tuple(others)
    return project


def _ignore_for(root: Path, skipped_dirs: set[str]) -> Any:
    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) == root
        ignored = set()
        for name in names:
            path = Path(folder, name)
            if name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES) or at_root and name in skipped_dirs:
                ignored.add(name)
            elif path.is_dir() and (path / "pyvenv.cfg").exists():
                ignored.add(name)  # a virtualenv under another name
        return ignored

    return ignore
