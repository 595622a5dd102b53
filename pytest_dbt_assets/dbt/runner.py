"""dbt in this process, against the temporary project: the environment it runs in, the run,
the DuckDB handles released after it, and its failure told in dbt's own words.

Used for ``dbt parse`` (manifest), ``dbt_assets_project.dbt()`` and by the worker's server;
dagster-dbt's own commands run through :func:`dbt_environment` too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from pytest_dbt_assets.compat import dbt as dbt_compat


class DbtBackend(Protocol):
    """What dbt in this process needs of the warehouse backend."""

    def running_dbt(self, main_file: Path) -> AbstractContextManager[None]:
        """Around a dbt command run in this process."""
        ...


class DbtProjectDirs(Protocol):
    """What running dbt needs of a temporary dbt project (``project.DbtAssetsProject`` is one;
    this package never imports it, so that the project can run dbt)."""

    @property
    def source_dir(self) -> Path: ...
    @property
    def project_dir(self) -> Path: ...
    @property
    def profiles_dir(self) -> Path: ...
    @property
    def target_dir(self) -> Path: ...
    @property
    def duckdb_path(self) -> Path: ...
    @property
    def profile_name(self) -> str: ...
    @property
    def target_name(self) -> str: ...
    @property
    def backend(self) -> DbtBackend: ...


# Environment variables that would redirect dbt away from the temporary project (the
# envvars of the flags `isolation.REDIRECTING_PARAMS` refuses, in dbt/cli/params.py). dbt's
# own command-line flags win over them, and the plugin passes those flags explicitly; they
# are hidden all the same, in both spellings dbt 1.11 reads (`DBT_ENGINE_...` wins).
_REDIRECTING_ENV_NAMES = (
    "PROFILES_DIR",
    "PROFILE",
    "TARGET",
    "TARGET_PATH",
    "PROJECT_DIR",
    "LOG_PATH",
    "PARTIAL_PARSE_FILE_PATH",
)
REDIRECTING_ENV_VARS = tuple(prefix + name for name in _REDIRECTING_ENV_NAMES for prefix in ("DBT_", "DBT_ENGINE_"))


@contextmanager
def process_state(cwd: str | Path, environ: Mapping[str, str]) -> Iterator[None]:
    """Run inside ``cwd`` with exactly ``environ``; the process's folder and environment are
    restored afterwards, whatever happens."""
    saved_cwd, saved_environ = os.getcwd(), dict(os.environ)
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        os.chdir(saved_cwd)


@contextmanager
def dbt_environment(settings: Mapping[str, str] | None = None) -> Iterator[None]:
    """Hide the user's ``DBT_*`` / ``DBT_ENGINE_*`` redirections, anonymous usage tracking and
    colours from the dbt commands started inside (in process, or by dagster-dbt, which copies
    ``os.environ``), and set ``settings`` (more ``DBT_*`` variables) for them.

    The environment is restored afterwards, whatever happens.
    """
    # Colour codes in dbt's lines would reach pytest's captured output raw (`[32mPASS[0m`).
    given = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false", **(settings or {})}
    saved = {name: os.environ.get(name) for name in (*REDIRECTING_ENV_VARS, *given)}
    try:
        for name in REDIRECTING_ENV_VARS:
            os.environ.pop(name, None)
        os.environ.update(given)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt(
    project: DbtProjectDirs,
    args: list[str],
    *,
    target_path: Path | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> tuple[Any, list[str]]:
    """Invoke dbt in this process; return its result and the error lines it logged.
    ``on_event`` is given every event dbt fires."""
    # Importing dbt costs seconds: only when dbt runs, not when the plugin loads.
    from dbt.cli.main import dbtRunner

    errors: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "error" and event.info.msg:
            errors.append(str(event.info.msg))

    command, *rest = args
    flags = [
        "--project-dir",
        str(project.project_dir),
        "--profiles-dir",
        str(project.profiles_dir),
        "--target-path",
        str(target_path or project.target_dir),
        "--log-path",
        str(project.project_dir / "logs"),
        "--log-level",
        "none",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    if command not in {"deps", "clean", "init"}:
        flags += ["--profile", project.profile_name, "--target", project.target_name]
    with dbt_environment(), project.backend.running_dbt(project.duckdb_path):
        try:
            result = dbtRunner(callbacks=[collect, *([on_event] if on_event else [])]).invoke([command, *flags, *rest])
        finally:
            release_duckdb()
    return result, errors


def release_duckdb() -> None:
    """Close every DuckDB handle dbt-duckdb holds in this process (it keeps them open)."""
    dbt_compat.close_duckdb_handles()


def describe_dbt_failure(what: str, project: DbtProjectDirs, result: Any, errors: list[str]) -> str:
    """Turn a failed dbt result into one readable message with dbt's own text."""
    lines = [f"{what} failed for the dbt project {project.source_dir}:"]
    texts = [*errors]
    if result.exception is not None:
        texts.append(str(result.exception))
    run_results = getattr(result.result, "results", None) or []
    for node_result in run_results:
        if str(node_result.status) in {"error", "fail"}:
            texts.append(f"{node_result.node.unique_id}: {node_result.message}")
    cleaned = []
    for text in texts:
        text = text.strip().removeprefix("Encountered an error:").strip()
        text = text.replace(str(project.project_dir) + os.sep, "")
        if text and text not in cleaned:
            cleaned.append(text)
    for text in cleaned:
        if not any(text != other and text in other for other in cleaned):
            lines.append("  " + text.replace("\n", "\n  "))
    return "\n".join(lines)
