"""Point every piece of dbt in the definitions under test at the temporary project: each
``DbtCliResource`` becomes an :class:`IsolatedDbtCliResource` bound to the temporary project
and DuckDB profile, and each ``DbtProject`` carried by ``@dbt_assets`` moves there too."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_dbt_assets.definitions import validate_definitions
from pytest_dbt_assets.project import DbtAssetsProject, dbt_environment

if TYPE_CHECKING:
    from dagster import Definitions


def relocate_definitions(defs: Definitions, project: DbtAssetsProject) -> Definitions:
    """Point every ``DbtCliResource`` and every ``DbtProject`` in ``defs`` at ``project``."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY
    from dagster_shared.record import replace

    from pytest_dbt_assets.components import isolate_components

    defs = isolate_components(defs, project)

    def relocate_spec(spec: Any) -> Any:
        dbt_project = spec.metadata.get(DAGSTER_DBT_PROJECT_METADATA_KEY)
        if dbt_project is None:
            return spec
        moved = replace(
            dbt_project,
            project_dir=project.project_dir,
            profiles_dir=project.profiles_dir,
            profile=project.profile_name,
            target=project.target_name,
            target_path=Path("target"),
            manifest_path=project.target_dir / "manifest.json",
            packaged_project_dir=None,
            state_path=None,
        )
        return spec.replace_attributes(metadata={**spec.metadata, DAGSTER_DBT_PROJECT_METADATA_KEY: moved})

    relocated = defs.permissive_map_resolved_asset_specs(relocate_spec, None)
    relocated = replace(relocated, resources=relocate_resources(defs.resources or {}, project))
    validate_definitions(relocated)
    return relocated


def relocate_resources(
    resources: Mapping[str, Any],
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
    indirect_selection: str | None = None,
) -> dict[str, Any]:
    """Replace each ``DbtCliResource`` with one bound to the temporary project and profile.

    ``dbt_executable`` replaces the resource's own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's ``--indirect-selection`` for the run (None: production's).
    """
    from dagster_dbt import DbtCliResource

    return {
        key: (
            relocated_cli_resource(
                value,
                project,
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
    from dagster_dbt.compat import DBT_PYTHON_VERSION

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
        dbt_assets_version=str(DBT_PYTHON_VERSION) if local and DBT_PYTHON_VERSION is not None else "",
        dbt_assets_indirect_selection=indirect_selection or "",
    )


@functools.cache
def isolated_cli_resource_class() -> type:
    """The ``DbtCliResource`` subclass the plugin binds (built lazily: dagster-dbt is slow to import)."""
    from dagster_dbt import DbtCliResource

    class IsolatedDbtCliResource(DbtCliResource):
        """A ``DbtCliResource`` for tests: adds the test's ``vars`` and writes each invocation
        under a known folder, so the plugin can read its ``run_results.json``."""

        dbt_assets_vars: str = ""
        dbt_assets_runs_dir: str = ""
        dbt_assets_version: str = ""
        dbt_assets_indirect_selection: str = ""

        @functools.cached_property
        def _cli_version(self) -> Any:
            # dagster-dbt runs `dbt --version` in a subprocess (seconds) for every resource
            # instance; when the dbt that runs is this interpreter's, its version is known.
            if self.dbt_assets_version:
                from packaging import version

                return version.parse(self.dbt_assets_version)
            return super()._cli_version

        def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
            # dagster-dbt builds an adapter (parsing every macro, most of a second) on each
            # `cli` call, for `fetch_row_counts()` and friends. Its inputs are the same for
            # every call with the same project, profile and vars: build it once per process.
            key = (self.project_dir, self.profiles_dir, self.profile, self.target, _vars_of(args))
            if key not in _ADAPTERS:
                _ADAPTERS[key] = super()._initialize_dbt_core_adapter(args)
            return _ADAPTERS[key]

        def cli(self, args: Sequence[str], *, target_path: Path | None = None, **kwargs: Any) -> Any:
            args = merge_vars(list(args), json.loads(self.dbt_assets_vars) if self.dbt_assets_vars else {})
            if target_path is None and self.dbt_assets_runs_dir:
                target_path = Path(self.dbt_assets_runs_dir) / uuid.uuid4().hex[:10]
            # dagster-dbt copies os.environ into dbt's: the user's DBT_ENGINE_PROFILES_DIR
            # and friends would beat the DBT_PROFILES_DIR it sets.
            with dbt_environment(), _indirect_selection(self.dbt_assets_indirect_selection):
                if self.dbt_assets_indirect_selection:
                    args = _without_flag(args, "--indirect-selection")
                invocation = super().cli(args, target_path=target_path, **kwargs)
            if self.dbt_assets_runs_dir:
                _INVOCATIONS.setdefault(self.dbt_assets_runs_dir, []).append(invocation)
            return invocation

    return IsolatedDbtCliResource


_ADAPTERS: dict[tuple[Any, ...], Any] = {}
# runs folder -> the dbt invocations started for that materialization (see stop_invocations).
_INVOCATIONS: dict[str, list[Any]] = {}
DBT_INDIRECT_SELECTION_ENV = "DBT_INDIRECT_SELECTION"


@contextmanager
def _indirect_selection(value: str) -> Iterator[None]:
    """dagster-dbt reads ``DBT_INDIRECT_SELECTION`` from this process's environment when it
    builds the dbt command, and replaces it with ``empty`` itself only when a subset of a
    model's checks is selected: setting it here lets the test's value win everywhere else.
    The variable is restored when the command has been started."""
    if not value:
        yield
        return
    saved = os.environ.get(DBT_INDIRECT_SELECTION_ENV)
    os.environ[DBT_INDIRECT_SELECTION_ENV] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DBT_INDIRECT_SELECTION_ENV, None)
        else:
            os.environ[DBT_INDIRECT_SELECTION_ENV] = saved


def _without_flag(args: Sequence[str], flag: str) -> list[str]:
    """``args`` without ``flag value`` / ``flag=value`` (a flag would beat the environment)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            kept.append(arg)
    return kept


def stop_invocations(runs_dir: Path, timeout: float = 300.0) -> list[str]:
    """Make sure no dbt command of the materialization under ``runs_dir`` still runs.

    When a step fails while dbt is still streaming (Dagster rejects an event, a user's
    ``@dbt_assets`` body raises), dagster-dbt drops the invocation with dbt still running and
    holding the DuckDB file. Each such process is stopped (SIGINT, as dagster-dbt does on
    interruption, then SIGTERM, then SIGKILL) and waited for. Returns the commands stopped.
    """
    stopped: list[str] = []
    for invocation in _INVOCATIONS.pop(str(runs_dir), []):
        process: subprocess.Popen[bytes] = invocation.process
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


def _split_vars(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``args`` without their ``--vars`` flags, and the values of those flags in order."""
    rest: list[str] = []
    values: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--vars" and index + 1 < len(args):
            values.append(args[index + 1])
            index += 2
            continue
        if arg.startswith("--vars="):
            values.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        index += 1
    return rest, values


def _vars_of(args: Sequence[str]) -> str:
    return " ".join(_split_vars(args)[1])


def merge_vars(args: list[str], extra: Mapping[str, Any]) -> list[str]:
    """Merge ``extra`` into the ``--vars`` of ``args`` (the test's values win)."""
    if not extra:
        return args
    rest, values = _split_vars(args)
    merged: dict[str, Any] = {}
    for value in values:
        merged.update(yaml.safe_load(value) or {})
    merged.update(extra)
    return [*rest, "--vars", json.dumps(merged, sort_keys=True, default=str)]
