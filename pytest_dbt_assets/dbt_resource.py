"""The isolated dbt resource: the ``DbtCliResource`` every dbt resource of the definitions
under test becomes, bound to the temporary project and profile, and the dbt commands it
started, kept per materialization so that none outlives it.

What it changes of dagster-dbt's ``DbtCliResource``: the test's ``vars`` and
``--indirect-selection`` on every command; each command's target folder under the
materialization's runs folder (the plugin reads ``run_results.json`` there); the ``dbt
--version`` subprocess dagster-dbt runs per resource instance skipped when the dbt that runs is
this interpreter's; and the dbt-core adapter dagster-dbt builds on every ``cli`` call (importing
dbt and parsing every macro, seconds, before dbt even starts) built once per project, profile
and vars, and only when something reads the invocation's ``adapter`` (``fetch_row_counts()``,
``fetch_column_metadata()``), while dbt already runs. The touches of dagster-dbt's internals
this needs are in :mod:`pytest_dbt_assets.compat.dagster_dbt`.

dagster-dbt is imported inside the functions that need it: the plugin imports this module's
callers at start-up, and importing dagster-dbt costs seconds.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.argv import merge_vars, vars_text, without_flag
from pytest_dbt_assets.compat import dagster_dbt as dagster_dbt_compat
from pytest_dbt_assets.dbt.runner import dbt_environment, process_state

if TYPE_CHECKING:
    from pytest_dbt_assets.project import DbtAssetsProject

DBT_INDIRECT_SELECTION_ENV = "DBT_INDIRECT_SELECTION"


class DbtInvocations:
    """The dbt commands the isolated resources start during one materialization.

    The materialization owns it: commands started inside :meth:`tracking` are kept here, and
    :meth:`stop` makes sure none of them still runs when the materialization ends.
    """

    def __init__(self) -> None:
        self._invocations: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def tracking(self) -> Iterator[DbtInvocations]:
        """Inside, every dbt command an isolated resource starts is kept here."""
        token = _TRACKING.set(self)
        try:
            yield self
        finally:
            _TRACKING.reset(token)

    def add(self, invocation: Any) -> None:
        with self._lock:
            self._invocations.append(invocation)

    def stop(self, timeout: float = 300.0) -> list[str]:
        """Make sure no dbt command of this materialization still runs.

        When a step fails while dbt is still streaming (Dagster rejects an event, a user's
        ``@dbt_assets`` body raises), dagster-dbt drops the invocation with dbt still running
        and holding the DuckDB file. Each such process is stopped (SIGINT, as dagster-dbt does
        on interruption, then SIGTERM, then SIGKILL) and waited for. Returns the commands stopped.
        """
        with self._lock:
            invocations, self._invocations = self._invocations, []
        return [command for invocation in invocations if (command := _stop(invocation, timeout)) is not None]


# The materialization running in this context (set by DbtInvocations.tracking).
_TRACKING: contextvars.ContextVar[DbtInvocations | None] = contextvars.ContextVar(
    "dbt_assets_invocations", default=None
)


def _stop(invocation: Any, timeout: float) -> str | None:
    process = dagster_dbt_compat.invocation_process(invocation)
    if process.poll() is not None:
        return None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            process.send_signal(sig)
            # Drain its output while waiting: a full pipe would keep it from ending.
            if process.stdout is not None and not process.stdout.closed:
                process.communicate(timeout=timeout / 3)
            else:
                process.wait(timeout=timeout / 3)
            break
        except subprocess.TimeoutExpired:
            continue
        except (ProcessLookupError, ValueError, OSError):
            process.wait(timeout=timeout / 3)
            break
    return " ".join(str(arg) for arg in process.args)  # type: ignore[union-attr]


def relocated_cli_resource(
    resource: Any,
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
    indirect_selection: str | None = None,
) -> Any:
    """A copy of ``resource`` (a ``DbtCliResource``) that can only reach the temporary project
    and DuckDB profile of ``project``.

    ``dbt_executable`` replaces the resource's own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's ``--indirect-selection`` for the run (None: production's);
    ``runs_dir`` holds each command's target folder.
    """
    executable = dbt_executable or resource.dbt_executable
    if dbt_executable is None and (shutil.which(executable) is None or Path(executable).name == executable):
        sibling = Path(sys.executable).with_name("dbt")
        if sibling.exists():
            executable = str(sibling)
    # The version of this interpreter's dbt, when that is the dbt that will run.
    local = dbt_executable is not None or Path(executable).parent == Path(sys.executable).parent
    return isolated_cli_resource_class()(
        project_dir=str(project.project_dir),
        profiles_dir=str(project.profiles_dir),
        profile=project.profile_name,
        target=project.target_name,
        global_config_flags=list(resource.global_config_flags),
        dbt_executable=executable,
        dbt_assets_vars=json.dumps(dict(vars), sort_keys=True, default=str) if vars else "",
        dbt_assets_runs_dir=str(runs_dir) if runs_dir else "",
        dbt_assets_version=(dagster_dbt_compat.dbt_python_version() or "") if local else "",
        dbt_assets_indirect_selection=indirect_selection or "",
    )


@functools.cache
def isolated_cli_resource_class() -> type:
    """The ``DbtCliResource`` subclass the plugin binds (built on first use, as are the imports
    it needs: dagster-dbt is slow to import)."""
    from pydantic import PrivateAttr

    # Adapters built so far, by project, profile and vars: the same for every call with those.
    adapters: dict[Any, Any] = {}

    class IsolatedDbtCliResource(dagster_dbt_compat.dbt_cli_resource_with_hooks()):  # type: ignore[misc]
        """A ``DbtCliResource`` for tests: adds the test's ``vars`` and writes each invocation
        under a known folder, so the plugin can read its ``run_results.json``."""

        dbt_assets_version: str = ""
        dbt_assets_vars: str = ""
        dbt_assets_runs_dir: str = ""
        dbt_assets_indirect_selection: str = ""
        # The materialization this resource was set up in: a command started in a thread of
        # the user's asset, outside the materialization's context, is still its own.
        _dbt_assets_tracking: DbtInvocations | None = PrivateAttr(default=None)

        def setup_for_execution(self, context: Any) -> None:
            super().setup_for_execution(context)
            self._dbt_assets_tracking = _TRACKING.get()

        def dbt_assets_known_version(self) -> str | None:
            return self.dbt_assets_version or None

        def dbt_assets_core_adapter(self, args: Sequence[str], build: Callable[[], Any]) -> Any:
            key = (self.project_dir, self.profiles_dir, self.profile, self.target, vars_text(args))
            if key in adapters:
                return adapters[key]
            # What dagster-dbt builds it from besides the resource: the folder and environment.
            cwd, environ = os.getcwd(), dict(os.environ)

            def build_once() -> Any:
                with _ADAPTER_LOCK:
                    if key not in adapters:
                        with process_state(cwd, environ):  # what dagster-dbt built it in, in cli()
                            adapters[key] = build()
                    return adapters[key]

            wanted = _ADAPTER_WANTED.get()
            if wanted is None:  # asked outside cli(): build it now, as dagster-dbt does
                return build_once()
            wanted.append(build_once)
            return None

        def cli(self, args: Sequence[str], *, target_path: Path | None = None, **kwargs: Any) -> Any:
            args = merge_vars(list(args), json.loads(self.dbt_assets_vars) if self.dbt_assets_vars else {})
            if target_path is None and self.dbt_assets_runs_dir:
                target_path = Path(self.dbt_assets_runs_dir) / uuid.uuid4().hex[:10]
            # dagster-dbt copies os.environ into dbt's: the user's DBT_ENGINE_PROFILES_DIR
            # and friends would beat the DBT_PROFILES_DIR it sets. It reads
            # DBT_INDIRECT_SELECTION from there too when it builds the command, and replaces it
            # with `empty` itself only when a subset of a model's checks is selected, so the
            # test's value set there wins everywhere else.
            indirect = self.dbt_assets_indirect_selection
            wanted: list[Callable[[], Any]] = []
            token = _ADAPTER_WANTED.set(wanted)
            try:
                with dbt_environment({DBT_INDIRECT_SELECTION_ENV: indirect} if indirect else None):
                    if indirect:
                        args = without_flag(args, "--indirect-selection")
                    invocation = super().cli(args, target_path=target_path, **kwargs)
            finally:
                _ADAPTER_WANTED.reset(token)
            if wanted:
                _build_adapter_on_first_read(invocation, wanted[-1])
            tracking = _TRACKING.get() or self._dbt_assets_tracking
            if tracking is not None:
                tracking.add(invocation)
            return invocation

    return IsolatedDbtCliResource


# The adapters dagster-dbt asked for during the current ``cli`` call, built when first read.
_ADAPTER_WANTED: contextvars.ContextVar[list[Callable[[], Any]] | None] = contextvars.ContextVar(
    "dbt_assets_adapter_wanted", default=None
)
# Building an adapter resets dbt's adapters of the whole process: one at a time.
_ADAPTER_LOCK = threading.RLock()


def _build_adapter_on_first_read(invocation: Any, build: Callable[[], Any]) -> None:
    """Make ``invocation.adapter`` call ``build`` the first time it is read (None if it fails,
    with a warning, as dagster-dbt treats an adapter it cannot build)."""
    invocation.__dict__["_dbt_assets_build_adapter"] = build
    dagster_dbt_compat.route_invocation_adapter(invocation, _read_adapter, _write_adapter)


def _read_adapter(invocation: Any) -> Any:
    with _ADAPTER_LOCK:
        build = invocation.__dict__.pop("_dbt_assets_build_adapter", None)
        if build is not None:
            try:
                invocation.__dict__["adapter"] = build()
            except Exception:  # noqa: BLE001 - dagster-dbt goes on without an adapter too
                # Only reached while Dagster runs: dagster is imported by then.
                from dagster import get_dagster_logger

                get_dagster_logger().warning(
                    "pytest-dbt-assets: the dbt adapter dagster-dbt uses for row counts and column "
                    "metadata could not be created; they are left out.",
                    exc_info=True,
                )
                invocation.__dict__["adapter"] = None
        return invocation.__dict__.get("adapter")


def _write_adapter(invocation: Any, value: Any) -> None:
    with _ADAPTER_LOCK:
        invocation.__dict__.pop("_dbt_assets_build_adapter", None)
        invocation.__dict__["adapter"] = value
