"""The session baseline: a template DuckDB database with the project (or a configured dbt
selection) built once and kept for later runs, which a test that asks for it starts from instead of
an empty database (pytest-postgresql's template database, dbt's ``--defer`` idea).

The template is built lazily by the first test that asks, in that test's own database, then
copied to ``<store>/dbt_assets_baseline/<key>/``: the dbt project's manifest cache
(``target/dbt_assets_cache/``), so that later runs reuse it, or the run's shared folder when
that cache cannot be written. The xdist workers of one run build it once between them, under
a file lock. The key covers everything the built relations depend on (the project's files,
the baseline selection, the source data files, the definitions and the Python code around
them, the versions of the packages that build it), so a changed model or translator never
reuses a stale template. Nothing here imports pytest or Dagster: the caller builds, under
:meth:`BaselineStore.claim`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_dbt_assets.cache import fingerprint, locked, package_version
from pytest_dbt_assets.database import checkpoint, drop_relations
from pytest_dbt_assets.discovery import python_files
from pytest_dbt_assets.errors import BaselineError, DbtAssetsError
from pytest_dbt_assets.sparse import copy_data_extents, write_sparse_copy

if TYPE_CHECKING:
    from pytest_dbt_assets.project import DbtAssetsProject

TEMPLATES_FOLDER = "dbt_assets_baseline"
FORMAT = "baseline-2"
# Templates a store keeps, the most recently used first (one per content key).
KEEP_TEMPLATES = 2
# Past this many Python files under the rootdir the code is not hashed, and the template is
# kept for the run only (a monorepo: hashing would cost more than it saves).
MAX_CODE_FILES = 5000
# Packages whose versions shape what is built, besides dbt's (see cache.fingerprint).
BUILDERS = ("dagster", "dagster-dbt", "duckdb", "pytest-dbt-assets")
METADATA_FILE = "baseline.json"
FAILURE_FILE = "failed.txt"
# One line per template build, appended: what built it, where, how long it took.
BUILD_LOG = "builds.log"


@dataclass(frozen=True)
class Template:
    """A built baseline: its folder (``dbt_assets.duckdb`` and ``attached/<alias>.duckdb``),
    the dbt selection it holds, and the dbt sources it loaded (``"source.table"``)."""

    folder: Path
    select: str | None
    sources: tuple[str, ...]


def shared_folder(basetemp: Path, xdist_worker: bool) -> Path:
    """Where a run keeps its baseline templates: the parent of an xdist worker's basetemp
    (``<run>/popen-gwN``), shared by the workers of that run; else the basetemp itself."""
    if xdist_worker and basetemp.name.startswith("popen-"):
        return basetemp.parent
    return basetemp


def describe_select(select: str | None) -> str:
    """How messages name the baseline's selection."""
    return (
        f"dbt_assets_baseline_select = {select!r}"
        if select
        else "the whole dbt project (no dbt_assets_baseline_select)"
    )


def code_fingerprint(rootdir: Path) -> str | None:
    """sha256 of the Python code that shapes what the baseline's Dagster run builds (the
    definitions, their translator and ``@dbt_assets`` body, a conftest.py's
    ``dbt_assets_resources``): every ``.py`` file under ``rootdir`` but test modules
    (``test_*.py``, ``*_test.py``), with the versions of Dagster, dagster-dbt, DuckDB and this
    plugin. None past ``MAX_CODE_FILES`` files."""
    digest = hashlib.sha256()
    for name in BUILDERS:
        digest.update(f"{name}={package_version(name)}\n".encode())
    count = 0
    for path in python_files(rootdir):
        if path.name.startswith("test_") or path.name.endswith("_test.py"):
            continue
        count += 1
        if count > MAX_CODE_FILES:
            return None
        try:
            content = path.read_bytes()
        except OSError:
            return None
        digest.update(str(path.relative_to(rootdir)).encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def baseline_key(
    project: DbtAssetsProject,
    select: str | None,
    data_dir: Path | None,
    definitions: str | None,
    code: str | None = None,
) -> str:
    """A hash of what the template's relations are built from: the files of the project and of
    the code location's other dbt projects (with the dbt versions and the env vars they read),
    the baseline selection, the files of the data folder, the definitions, the databases
    sources pin and ``code`` (:func:`code_fingerprint`)."""
    digest = hashlib.sha256()
    digest.update(f"code={code}\n".encode())
    # Every dbt project of the code location (they share the test database).
    project_files = "\n".join(
        fingerprint(each.project_dir, profile=each.profile_identity, target=each.target_name, skip=("target", "logs"))
        for each in project.all_projects
    )
    digest.update(f"{FORMAT}\n{project_files}\nselect={select!r}\ndefinitions={definitions!r}\n".encode())
    digest.update(f"attached={sorted(project.attached_databases)}\n".encode())
    if data_dir is not None and data_dir.is_dir():
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(data_dir)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def _database_files(project: DbtAssetsProject) -> dict[Path, Path]:
    """Test database file -> its name inside a template folder. The main file keeps its name
    (DuckDB names the catalog after the file's stem, and views store qualified names)."""
    files = {project.duckdb_path: Path(project.duckdb_path.name)}
    for alias, path in sorted(project.attached_databases.items()):
        files[path] = Path("attached", f"{alias}.duckdb")
    return files


class BaselineStore:
    """Where one session keeps and finds its baseline templates, and their key.

    The key hashes what does not change during a session, so it is computed once, on first
    use. Templates are kept in the manifest cache (``<dbt project>/target/dbt_assets_cache/``)
    for later runs; in the run's shared folder when that cache cannot be used (``cache_dir``
    None) or the code cannot be hashed. A failed build is remembered in the run's folder only.

    Example:
        >>> store = BaselineStore(rootdir, select="+stg_orders", data_dir=None, definitions=None, cache_dir=cache)
        >>> store.start_from(project, run_folder, build_the_baseline, data={}, drop=[("", "main", "orders")])
    """

    def __init__(
        self,
        rootdir: Path,
        *,
        select: str | None,
        data_dir: Path | None,
        definitions: str | None,
        cache_dir: Path | None,
    ) -> None:
        self.rootdir = rootdir
        self.select = select
        self.data_dir = data_dir
        self.definitions = definitions
        self.cache_dir = cache_dir
        self._key: str | None = None
        self._folder: Path | None = None  # None: the run's own folder

    def _locate(self, project: DbtAssetsProject) -> tuple[str, Path | None]:
        if self._key is None:
            code = code_fingerprint(self.rootdir)
            self._key = baseline_key(project, self.select, self.data_dir, self.definitions, code)
            self._folder = self.cache_dir if code is not None else None
        return self._key, self._folder

    @contextlib.contextmanager
    def claim(self, project: DbtAssetsProject, run_folder: Path) -> Iterator[TemplateClaim]:
        """Hold this session's template (under a lock the run's processes share): its
        ``template`` when one is built, else the caller builds the baseline into ``project``'s
        database (reset here) and hands the sources it loaded to ``claim.built(...)``.

        Raises:
            BaselineError: the build failed (now, or earlier in another process of the run).
        """
        __tracebackhide__ = True
        key, folder = self._locate(project)
        root = (folder or run_folder) / TEMPLATES_FOLDER
        failure_file = run_folder / TEMPLATES_FOLDER / key / FAILURE_FILE
        with locked(root / f"{key}.lock"):
            claim = TemplateClaim(root, key, project, self.select, read_template(root / key))
            if claim.template is not None:
                with contextlib.suppress(OSError):  # most recently used: kept longest
                    os.utime(root / key / METADATA_FILE)
                yield claim
                return
            if failure_file.is_file():
                raise BaselineError(failure_file.read_text(encoding="utf-8"))
            project.reset_database()
            try:
                yield claim
            except DbtAssetsError as error:
                message = (
                    f"The session baseline ({describe_select(self.select)}) could not be built, so no test "
                    "can start from it:\n"
                    f"{type(error).__name__}: {error}\n"
                    "Fix the models it names, narrow dbt_assets_baseline_select to what builds, or drop "
                    "baseline=True from the tests (they then build their own upstream)."
                )
                failure_file.parent.mkdir(parents=True, exist_ok=True)
                failure_file.write_text(message, encoding="utf-8")
                raise BaselineError(message) from None

    def start_from(
        self,
        project: DbtAssetsProject,
        run_folder: Path,
        build: Callable[[], Sequence[str]],
        *,
        data: Mapping[str, object],
        drop: Sequence[tuple[str, str, str]],
    ) -> None:
        """Make ``project``'s database the session's template without the relations ``drop``
        names: :meth:`claim`, ``build()`` it into that database when none is built (``build``
        returns the labels of the sources it loaded), then :meth:`put_in_place`.

        Raises:
            BaselineError: the build failed, or the test gives rows for a source it loaded.
        """
        __tracebackhide__ = True
        with self.claim(project, run_folder) as claim:
            if claim.template is None:
                claim.built(build())
        self.put_in_place(claim, project, data=data, drop=drop)

    @staticmethod
    def put_in_place(
        claim: TemplateClaim,
        project: DbtAssetsProject,
        *,
        data: Mapping[str, object],
        drop: Sequence[tuple[str, str, str]],
    ) -> None:
        """Make ``project``'s database the claimed template (a copy, unless it was built right
        there), without the relations ``drop`` names (the test's selection builds them).

        Raises:
            BaselineError: the test gives rows for a source the baseline loaded.
        """
        __tracebackhide__ = True
        assert claim.template is not None, "claim() and build first"
        refuse_overlapping_data(claim.template, data, "baseline=True")
        if not claim.built_here:
            copy_template(claim.template, project)
        drop_relations(project.duckdb_path, project.attached_databases, drop)


class TemplateClaim:
    """A template held under :meth:`BaselineStore.claim`'s lock: the one built, or the place
    where :meth:`built` saves the one the caller just built into the project's database."""

    def __init__(
        self, root: Path, key: str, project: DbtAssetsProject, select: str | None, template: Template | None
    ) -> None:
        self.root, self.key, self.project, self.select = root, key, project, select
        self.template = template
        self.built_here = False
        self.started = time.perf_counter()

    def built(self, sources: Sequence[str]) -> Template:
        """Save the project's database (every connection to it closed) as the template, with
        the labels of the ``sources`` its build loaded. Past ``KEEP_TEMPLATES``, the least
        recently used templates of the store are removed."""
        root, key, project = self.root, self.key, self.project
        checkpoint(project.duckdb_path, project.attached_databases)
        staging = root / f".{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for source, name in _database_files(project).items():
            if source.exists():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                write_sparse_copy(source, staging / name)
        metadata = {"select": self.select, "sources": sorted(sources)}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, sort_keys=True), encoding="utf-8")
        template_dir = root / key
        shutil.rmtree(template_dir, ignore_errors=True)
        os.rename(staging, template_dir)
        seconds = time.perf_counter() - self.started
        with open(root / BUILD_LOG, "a", encoding="utf-8") as log:
            log.write(f"{key} built by pid {os.getpid()} in {seconds:.2f} s: {describe_select(self.select)}\n")
        _remove_least_recently_used(root, keep=template_dir)
        self.template = Template(folder=template_dir, select=self.select, sources=tuple(sorted(sources)))
        self.built_here = True
        return self.template


def _remove_least_recently_used(root: Path, keep: Path) -> None:
    """Remove the templates under ``root`` past the ``KEEP_TEMPLATES`` most recently used
    (``keep``, just built, among them)."""

    def last_used(template_dir: Path) -> float:
        try:
            return (template_dir / METADATA_FILE).stat().st_mtime
        except OSError:
            return 0.0

    others = sorted(
        (path for path in root.iterdir() if path.is_dir() and path != keep and not path.name.startswith(".")),
        key=last_used,
        reverse=True,
    )
    for stale in others[KEEP_TEMPLATES - 1 :]:
        if (stale / METADATA_FILE).is_file():
            shutil.rmtree(stale, ignore_errors=True)


def read_template(template_dir: Path) -> Template | None:
    """The template built in ``template_dir``, or None when there is none (yet)."""
    try:
        metadata = json.loads((template_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Template(folder=template_dir, select=metadata["select"], sources=tuple(metadata["sources"]))


def copy_template(template: Template, project: DbtAssetsProject) -> None:
    """Make ``project``'s database (and the databases sources pin) a copy of ``template``.

    The files are copied under the names the test's profile uses, with no connection open
    (DuckDB files are copied whole; a copy of a database in use could be torn)."""
    project.reset_database()
    for target, name in _database_files(project).items():
        if (template.folder / name).exists():
            copy_data_extents(template.folder / name, target)


def refuse_overlapping_data(template: Template, data: Mapping[str, object], given_by: str) -> None:
    """Raise :class:`BaselineError` when the test gives rows for a source the baseline loaded:
    the baseline's models were built from the data folder (or an empty table), and the
    test's rows would reach none of them."""
    __tracebackhide__ = True
    overlap = sorted(set(data) & set(template.sources))
    if not overlap:
        return
    names = ", ".join(overlap)
    raise BaselineError(
        f"{given_by} asks to start from the session baseline, but the test gives rows for "
        f"source {names} (marker data= or the dbt_assets_data fixture), which the baseline "
        f"({describe_select(template.select)}) already loaded from dbt_assets_data_dir or as an "
        "empty table from its declared columns, and built its downstream models from: the test's "
        "rows would reach none of them. Drop baseline for this test (it then builds its upstream "
        "from its own rows), put the rows in a file of dbt_assets_data_dir so the baseline is "
        "built from them, or leave the source out of dbt_assets_baseline_select."
    )
