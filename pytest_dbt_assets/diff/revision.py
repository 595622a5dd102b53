"""The base side of a comparison: a git revision's tree, built and loaded by the plugin in a
pytest run of that tree, with nothing of the user's checkout touched.

The tree comes from ``git archive`` (no checkout, no change to the index, the stash or the
working tree). In it, a generated test sits beside the asking test's twin folder, so the base
revision's own conftest files, fixtures and definitions load as they would in a checkout of
it. That run writes a result folder: the graph record (:mod:`.export`) and, when asked, what
it materialized, each relation exported to Parquet. Results are kept by what they depend on
(the commit, the request, the source data, the plugin's version), so a second ask is free.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_dbt_assets.cache import locked, package_version
from pytest_dbt_assets.diff.export import digest
from pytest_dbt_assets.errors import RevisionError

REQUEST_ENV = "PYTEST_DBT_ASSETS_BASE_REQUEST"
RESULT_FILE = "result.json"
# The outer run's own pytest and xdist state, which the nested run must not inherit.
_OUTER_ENV = ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
              "PYTEST_XDIST_TESTRUNUID")  # fmt: skip
_KEPT_TREES = 3
_HANG_GUARD_SECONDS = 1800
_GENERATED_TEST = '''\
"""Written by pytest-dbt-assets: builds this revision for a comparison. Not a user's test."""

import pytest

from pytest_dbt_assets.diff.base_side import requested_data, run_base_side


@pytest.mark.dbt_assets(data=requested_data())
def test_dbt_assets_base_revision(request):
    run_base_side(request)
'''


@dataclass(frozen=True)
class Revision:
    """A commit the user named (``origin/main``), resolved."""

    name: str
    sha: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sha[:7]})"


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git args`` run in ``repo``, its output as text (paths unquoted), whatever its exit code.

    Raises:
        RevisionError: git is not installed.
    """
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "core.quotePath=off", *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise RevisionError("git is not installed: comparing with a base revision reads it from git.") from None


def repository_root(folder: Path) -> Path:
    """The top of the git checkout holding ``folder``.

    Raises:
        RevisionError: ``folder`` is not in a git checkout (or git is not installed).
    """
    found = git(folder, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise RevisionError(
            f"{folder} is not in a git repository: a base revision is read from git. Run the tests in "
            "a clone of the repository."
        )
    return Path(found.stdout.strip()).resolve()


def resolve_revision(repo: Path, name: str) -> Revision:
    """``name`` (a branch, tag, sha or ``HEAD~1``) as a commit.

    Raises:
        RevisionError: git does not know ``name``, with the fetch that usually fixes it.
    """
    found = git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if found.returncode != 0:
        remote, _, branch = name.partition("/")
        fetch = f"git fetch {remote} {branch}" if branch else "git fetch"
        raise RevisionError(
            f"git does not know the base revision {name!r} in {repo}. Fetch it (`{fetch}`; a CI "
            "checkout is often shallow: actions/checkout needs `fetch-depth: 0`), or name another "
            "(a branch, a tag or a commit sha)."
        )
    return Revision(name=name, sha=found.stdout.strip())


def extract_tree(repo: Path, revision: Revision, destination: Path) -> None:
    """Write the files of ``revision`` into ``destination`` (``git archive``: the checkout,
    its index and its stash are only read). Git LFS files come as their pointers."""
    destination.mkdir(parents=True)
    with subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", revision.sha],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as archive:
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(destination, filter="data")
            else:  # Python before 3.11.4: git archive writes no links out of the tree
                tar.extractall(destination)
        error = archive.stderr.read().decode(errors="replace") if archive.stderr else ""
    if archive.returncode != 0:
        raise RevisionError(f"git archive of {revision.label} failed: {error.strip()}")


@dataclass(frozen=True)
class BaseRequest:
    """What to build at the base revision, and where the asking session lives.

    ``caller_dir``, ``rootdir`` and ``inifile`` are paths of the working tree; the run uses their
    twins in the base tree. ``data_dir`` stays the working tree's, so both sides read the same
    source data; ``data`` (``"source.table"`` -> rows) is the asking test's own.
    """

    revision: Revision
    caller_dir: Path
    rootdir: Path
    inifile: Path | None
    data_dir: Path | None = None
    materialize: bool = False
    select: Any = None
    dbt_select: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool | None = None

    def key(self) -> str:
        """What the result depends on: the commit, what is built, the source data and the plugin."""
        data_files = (
            sorted(
                (str(path.relative_to(self.data_dir)), hashlib.sha256(path.read_bytes()).hexdigest())
                for path in self.data_dir.rglob("*")
                if path.is_file()
            )
            if self.data_dir and self.data_dir.is_dir()
            else []
        )
        return digest(
            {
                "sha": self.revision.sha,
                "materialize": self.materialize,
                "select": self.select,
                "dbt_select": self.dbt_select,
                "baseline": self.baseline,
                "data": self.data,
                "data_files": data_files,
                "plugin": package_version("pytest-dbt-assets"),
            }
        )


class BaseRuns:
    """Base-revision results of one repository, kept in ``cache_root`` (shared by xdist workers
    and, under pytest's cache folder, by later sessions)."""

    def __init__(self, repo: Path, cache_root: Path) -> None:
        self.repo = repo
        self.cache_root = cache_root

    def result(self, request: BaseRequest) -> tuple[dict[str, Any], Path]:
        """The base run's ``result.json`` data and its folder (Parquet files beside it), built
        once per :meth:`BaseRequest.key`.

        Raises:
            RevisionError: the base tree could not be built or loaded, with the run's output.
        """
        key = request.key()
        folder = self.cache_root / "results" / key
        with locked(self.cache_root / "results" / f"{key}.lock"):
            if not (folder / RESULT_FILE).is_file():
                self._run(request, key, folder)
        return json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")), folder

    def _tree(self, revision: Revision) -> Path:
        trees = self.cache_root / "trees"
        tree = trees / revision.sha
        with locked(trees / f"{revision.sha}.lock"):
            if not tree.is_dir():
                partial = trees / f"{revision.sha}.partial-{os.getpid()}"
                shutil.rmtree(partial, ignore_errors=True)
                extract_tree(self.repo, revision, partial)
                partial.rename(tree)
            os.utime(tree)
        for old in sorted((path for path in trees.iterdir() if path.is_dir() and "." not in path.name),
                          key=lambda path: path.stat().st_mtime)[:-_KEPT_TREES]:  # fmt: skip
            shutil.rmtree(old, ignore_errors=True)
        return tree

    def _twin(self, tree: Path, path: Path) -> Path:
        try:
            return tree / path.resolve().relative_to(self.repo)
        except ValueError:
            raise RevisionError(f"{path} is outside the git repository {self.repo}: it has no base revision.") from None

    def _run(self, request: BaseRequest, key: str, folder: Path) -> None:
        tree = self._tree(request.revision)
        rootdir = self._twin(tree, request.rootdir)
        caller_dir = self._twin(tree, request.caller_dir)
        if not caller_dir.is_dir():  # the asking test's folder is new: the base has none
            caller_dir = rootdir
        work = folder.with_name(f"{folder.name}.work-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        request_file = work / "request.json"
        request_file.write_text(
            json.dumps({**asdict(request), "out": str(work / "out")}, default=str, indent=1), encoding="utf-8"
        )
        test_file = caller_dir / f"test_dbt_assets_base_{key}.py"
        test_file.write_text(_GENERATED_TEST, encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-p", "no:randomly", "-o", "addopts=", f"--rootdir={rootdir}", f"--basetemp={work / 'basetemp'}",
        ]  # fmt: skip
        if request.inifile is not None:
            command.append(f"-c={self._twin(tree, request.inifile)}")
        if request.data_dir is not None:
            command.append(f"--dbt-assets-data-dir={request.data_dir}")
        env = {name: value for name, value in os.environ.items() if name not in _OUTER_ENV}
        env[REQUEST_ENV] = str(request_file)
        env["PYTHONPATH"] = os.pathsep.join([*self._python_path(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        try:
            run = subprocess.run(
                command, cwd=rootdir, env=env, capture_output=True, text=True, timeout=_HANG_GUARD_SECONDS, check=False
            )
        finally:
            test_file.unlink(missing_ok=True)
        log = run.stdout + run.stderr
        (work / "run.log").write_text(log, encoding="utf-8")
        if run.returncode != 0 or not (work / "out" / RESULT_FILE).is_file():
            tail = "\n".join(log.rstrip().splitlines()[-40:])
            raise RevisionError(
                f"The base revision {request.revision.label} could not be built and loaded by the plugin "
                f"(pytest exited {run.returncode}; the whole output is in {work / 'run.log'}). Its last lines:\n"
                f"{tail}"
            )
        shutil.rmtree(folder, ignore_errors=True)
        (work / "out").rename(folder)
        shutil.rmtree(work, ignore_errors=True)

    def _python_path(self, tree: Path) -> list[str]:
        """The asking process's import folders inside the repository (``src/``, the root),
        pointed at the base tree, so the user's packages import from it; virtualenvs skipped."""
        found = []
        for entry in sys.path:
            if not entry or "site-packages" in entry:
                continue
            path = Path(entry).resolve()
            if path.is_relative_to(self.repo) and not path.is_relative_to(Path(sys.prefix).resolve()):
                twin = tree / path.relative_to(self.repo)
                if twin.is_dir() and str(twin) not in found:
                    found.append(str(twin))
        if str(tree) not in found:
            found.append(str(tree))
        return found
