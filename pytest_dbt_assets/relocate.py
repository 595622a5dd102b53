"""Point every piece of dbt in the definitions under test at the temporary project: each
``DbtCliResource`` becomes an :class:`IsolatedDbtCliResource` bound to the temporary project
and DuckDB profile, and each ``DbtProject`` carried by ``@dbt_assets`` moves there too."""

from __future__ import annotations

import functools
import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.argv import merge_vars, vars_text, without_flag
from pytest_dbt_assets.compat import (
    dbt_cli_resource_base,
    dbt_python_version,
    invocation_process,
    map_dbt_projects,
    moved_dbt_project,
    with_resources,
)
from pytest_dbt_assets.dbt.runner import dbt_environment
from pytest_dbt_assets.definitions import validate_definitions
from pytest_dbt_assets.project import DbtAssetsProject

if TYPE_CHECKING:
    from dagster import Definitions


def relocate_definitions(defs: Definitions, project: DbtAssetsProject) -> Definitions:
    """Point every ``DbtCliResource`` and every ``DbtProject`` in ``defs`` at ``project``, or,
    with several dbt projects (``project.others``), each at its own temporary copy (matched by
    the user's folder, else by dbt project name; see :meth:`DbtAssetsProject.counterpart`)."""

    from pytest_dbt_assets.components import isolate_components

    defs = isolate_components(defs, project)
    main = project
    # Every spec of one @dbt_assets carries the same DbtProject: each is moved once (finding
    # its counterpart resolves paths), and its specs share the moved one, as they shared it.
    moved: dict[int, tuple[Any, Any]] = {}

    def move(dbt_project: Any) -> Any:
        if id(dbt_project) in moved:
            return moved[id(dbt_project)][1]
        project = main.counterpart(getattr(dbt_project, "project_dir", None), getattr(dbt_project, "name", None))
        moved[id(dbt_project)] = (
            dbt_project,  # kept, so that its id is not reused during the mapping
            moved_dbt_project(
                dbt_project,
                project_dir=project.project_dir,
                profiles_dir=project.profiles_dir,
                profile=project.profile_name,
                target=project.target_name,
                manifest_path=project.target_dir / "manifest.json",
            ),
        )
        return moved[id(dbt_project)][1]

    relocated = map_dbt_projects(defs, move)
    relocated = with_resources(relocated, relocate_resources(defs.resources or {}, project))
    validate_definitions(relocated)
    return relocated  # type: ignore[no-any-return]


def relocate_resources(
    resources: Mapping[str, Any],
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
    indirect_selection: str | None = None,
) -> dict[str, Any]:
    """Replace each ``DbtCliResource`` with one bound to the temporary project and profile
    (with several dbt projects, the one of the resource's ``project_dir``).

    ``dbt_executable`` replaces the resource's own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's ``--indirect-selection`` for the run (None: production's).
    """
    from dagster_dbt import DbtCliResource

    return {
        key: (
            relocated_cli_resource(
                value,
                project.counterpart(value.project_dir),
                vars=vars,
                runs_dir=runs_dir,
                dbt_executable=dbt_executable,
                indirect_selection=indirect_selection,
            )
            if isinstance(value, DbtCliResource)
            else value
        )
        for key, value in resources.items()
    }


def relocated_cli_resource(
    resource: Any,
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
    indirect_selection: str | None = None,
) -> Any:
    """A copy of ``resource`` that can only reach the temporary project and DuckDB profile."""
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
        dbt_assets_version=(dbt_python_version() or "") if local else "",
        dbt_assets_indirect_selection=indirect_selection or "",
    )


@functools.cache
def isolated_cli_resource_class() -> type:
    """The ``DbtCliResource`` subclass the plugin binds (built lazily: dagster-dbt is slow to import)."""

    class IsolatedDbtCliResource(dbt_cli_resource_base()):  # type: ignore[misc]
        """A ``DbtCliResource`` for tests: adds the test's ``vars`` and writes each invocation
        under a known folder, so the plugin can read its ``run_results.json``."""

        dbt_assets_vars: str = ""
        dbt_assets_runs_dir: str = ""
        dbt_assets_indirect_selection: str = ""

        def dbt_assets_adapter_key(self, args: Sequence[str]) -> Any:
            # The adapter's inputs: the same for every call with the same project, profile and vars.
            return (self.project_dir, self.profiles_dir, self.profile, self.target, vars_text(args))

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
            with dbt_environment({DBT_INDIRECT_SELECTION_ENV: indirect} if indirect else None):
                if self.dbt_assets_indirect_selection:
                    args = without_flag(args, "--indirect-selection")
                invocation = super().cli(args, target_path=target_path, **kwargs)
            if self.dbt_assets_runs_dir:
                _INVOCATIONS.setdefault(self.dbt_assets_runs_dir, []).append(invocation)
            return invocation

    return IsolatedDbtCliResource


# runs folder -> the dbt invocations started for that materialization (see stop_invocations).
_INVOCATIONS: dict[str, list[Any]] = {}
DBT_INDIRECT_SELECTION_ENV = "DBT_INDIRECT_SELECTION"


def stop_invocations(runs_dir: Path, timeout: float = 300.0) -> list[str]:
    """Make sure no dbt command of the materialization under ``runs_dir`` still runs.

    When a step fails while dbt is still streaming (Dagster rejects an event, a user's
    ``@dbt_assets`` body raises), dagster-dbt drops the invocation with dbt still running and
    holding the DuckDB file. Each such process is stopped (SIGINT, as dagster-dbt does on
    interruption, then SIGTERM, then SIGKILL) and waited for. Returns the commands stopped.
    """
    stopped: list[str] = []
    for invocation in _INVOCATIONS.pop(str(runs_dir), []):
        process = invocation_process(invocation)
        if process.poll() is not None:
            continue
        stopped.append(" ".join(str(arg) for arg in process.args))  # type: ignore[union-attr]
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
    return stopped
