"""pytester runs are in-process (fast: dagster, dagster-dbt and dbt are imported once here);
pytester restores sys.modules after each run, so every user repo's modules are fresh.

Layout: ``tests/unit/`` mirrors the package (no nested pytest session); ``tests/e2e/`` runs
pytest on user repos written by the test and is marked ``e2e`` (``pytest -m "not e2e"`` is the
quick loop). End-to-end tests are collected first, so that under ``-n`` the long ones start
early and the short unit tests fill the end of each worker's queue.
"""

from __future__ import annotations

import multiprocessing.resource_tracker  # dbt's semaphores unregister through it: keep it loaded
import multiprocessing.synchronize  # noqa: F401
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster  # noqa: F401  - imported once for all in-process inner runs
import dagster_dbt  # noqa: F401
import dbt.adapters.duckdb
import dbt.adapters.duckdb.connections
import dbt.cli.main  # noqa: F401
import duckdb  # noqa: F401
import pytest

from pytest_dbt_assets.dbt.zygote import ZYGOTE_ENV, Zygote
from tests.repos import NESTED_LOG_VARIABLE, SHOP_DAGSTER_FILES, SHOP_DBT_FILES, SHOP_INI, count_nested_run, write_files

pytest_plugins = ["pytester"]

# Library modules that inner runs imported lazily (dagster imports its instance, storage and
# sqlalchemy only when it first runs something). pytester drops them after each run; imported
# again, dagster registers its serializable classes a second time and fails with
# "Multiple deserializers registered". So they are kept here and put back before every
# inner run.
_KEPT_MODULES: dict[str, ModuleType] = {}


class _KeepLibraryModules:
    """Inner-run plugin: remember every module the run imported from outside the user repo."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        for name, module in list(sys.modules.items()):
            if module is not None and not self._from_repo(module):
                _KEPT_MODULES[name] = module

    def _from_repo(self, module: ModuleType) -> bool:
        paths = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
        return any(path and Path(path).is_relative_to(self.repo) for path in paths)


@pytest.fixture(autouse=True)
def _library_modules_put_back() -> None:
    """Every test starts with the library modules inner runs imported: pytester restores
    ``sys.modules`` after each test that used it, and a later test importing one of those
    dagster modules again (a unit test's ``materialize``) would fail as inner runs would."""
    sys.modules.update(_KEPT_MODULES)


@pytest.fixture(scope="session")
def suite_cache_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The plugin's cache folder that the nested sessions of every test process share."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if worker_id != "master" else base) / "dbt-assets-suite-cache"


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, suite_cache_dir: Path
) -> Iterator[pytest.Pytester]:
    """pytester whose inner runs share the library modules earlier inner runs imported, and
    the plugin's cache: nested sessions run as a CI job that keeps ``dbt_assets_cache_dir``
    between runs does. A session parses only what differs from an earlier session's project
    of the same name (or nothing), instead of every file and dbt's hundreds of macros; without
    it, the start-up parse was half of a nested session's CPU. Tests of a first run, of the
    cache and of what it keeps use ``own_cache``: their sessions keep theirs in the project's
    ``target/``, as a fresh clone's do."""
    # pytester removed PYTEST_ADDOPTS when it was made; nested runs, in process or not, read it.
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--dbt-assets-cache-dir={suite_cache_dir}")
    keeper = _KeepLibraryModules(pytester.path)
    inline_run = pytester.inline_run

    def inline_run_keeping_libraries(*args: Any, plugins: Any = (), **kwargs: Any) -> Any:
        sys.modules.update(_KEPT_MODULES)
        return inline_run(*args, plugins=[*plugins, keeper], **kwargs)

    def runpytest_subprocess_counted(*args: Any, **kwargs: Any) -> pytest.RunResult:
        count_nested_run("subprocess")
        return runpytest_subprocess(*args, **kwargs)

    def inline_run_counted(*args: Any, **kwargs: Any) -> Any:
        count_nested_run("in-process")
        return inline_run_keeping_libraries(*args, **kwargs)

    runpytest_subprocess = pytester.runpytest_subprocess
    monkeypatch.setattr(pytester, "inline_run", inline_run_counted)
    monkeypatch.setattr(pytester, "runpytest_subprocess", runpytest_subprocess_counted)
    yield pytester


@pytest.fixture(scope="session", autouse=True)
def _dbt_zygote() -> Iterator[None]:
    """One warm process per test process, which the nested sessions' dbt workers are forked
    from (pytest_dbt_assets.dbt.zygote): a worker that imported dbt itself would spend most of
    a nested session's CPU doing so; one that also found dbt's first parse and build done saves
    about a second more, and each dbt command a few tenths. Tests of the worker's own process
    use no_suite_zygote."""
    if os.environ.get("DBT_ASSETS_TESTS_NO_ZYGOTE"):  # to measure what the zygote saves
        yield
        return
    zygote = Zygote(warm_runtime=True)  # it forks a server for each of hundreds of nested sessions
    try:
        yield
    finally:
        zygote.stop()


@pytest.fixture
def no_suite_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested sessions start their dbt worker as a user's session does, without the suite's
    zygote: as a process of its own (under xdist, forked from the controller's zygote). For
    tests of how that process is watched, killed and cleaned up."""
    monkeypatch.delenv(ZYGOTE_ENV, raising=False)  # absent with DBT_ASSETS_TESTS_NO_ZYGOTE


@pytest.fixture
def own_cache(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested sessions keep the plugin's cache where a user's do (the dbt project's
    ``target/dbt_assets_cache``), not in the suite's shared folder: for tests of a fresh clone,
    of the cache itself, and of what is kept in it."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


@pytest.fixture
def shop_repo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user repo with the `shop` dbt project, its Dagster definitions and a pyproject."""
    write_files(pytester.path, {**SHOP_DBT_FILES, **SHOP_DAGSTER_FILES, "pyproject.toml": SHOP_INI})
    return pytester


@pytest.fixture(autouse=True)
def _inner_runs_are_plain_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `-n`, this process is an xdist worker; inner pytester runs are not (syrupy reads
    PYTEST_XDIST_WORKER and would leave unused-snapshot cleanup to a controller)."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)


# The end-to-end modules whose tests take longest (measured with --durations), started first.
_LONGEST_FIRST = (
    "test_fidelity.py",
    "test_leaks.py",
    "test_isolation.py",
    "test_baseline.py",
    "test_snowflake.py",
    "test_changed.py",
    "test_diff.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests first, the longest modules before the others; a stable sort, so the
    order within a module is kept."""

    def rank(item: pytest.Item) -> tuple[bool, int]:
        name = item.path.name
        return item.get_closest_marker("e2e") is None, (
            _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)
        )

    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """With DBT_ASSETS_TESTS_NESTED_LOG set, how many nested pytest runs the suite made."""
    log = os.environ.get(NESTED_LOG_VARIABLE)
    if not log or not Path(log).exists() or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    kinds = Path(log).read_text(encoding="utf-8").split()
    counted = ", ".join(f"{kinds.count(kind)} {kind}" for kind in sorted(set(kinds)))
    terminalreporter.write_line(f"nested pytest runs: {len(kinds)} ({counted})")
