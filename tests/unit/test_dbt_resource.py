"""The isolated dbt resource keeps the commands it starts per materialization, and stops those
still running when the materialization ends.

The resource is dagster-dbt's own ``DbtCliResource`` subclassed; its "dbt" here is this Python
running a script that would outlive the test (a dbt left streaming by a failed step), so that
stopping it is what is tested, on a real process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_dbt_assets.dbt_resource import DbtInvocations, relocated_cli_resource

SLEEP = ["-c", "import time; print('running', flush=True); time.sleep(600)"]


def running(invocation: Any) -> Any:
    """``invocation`` once its Python runs the script, as dbt is when the plugin stops it. A
    stop sent while the interpreter was still starting once waited out its whole grace for
    SIGINT (100 s) before SIGTERM, in a loaded suite run."""
    line = invocation.process.stdout.readline()
    assert line.strip() in (b"running", "running"), line
    return invocation


@dataclass(frozen=True)
class TemporaryProject:
    """What the resource is bound to: a temporary project's folders and profile."""

    project_dir: Path
    profiles_dir: Path
    profile_name: str = "shop"
    target_name: str = "dbt_assets"


@pytest.fixture
def resource(tmp_path: Path) -> object:
    from dagster_dbt import DbtCliResource

    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", encoding="utf-8")
    (project_dir / "profiles.yml").write_text("shop:\n  target: dbt_assets\n  outputs: {}\n", encoding="utf-8")
    project = TemporaryProject(project_dir=project_dir, profiles_dir=project_dir)
    return relocated_cli_resource(
        DbtCliResource(project_dir=str(project_dir)),
        project,  # type: ignore[arg-type]
        runs_dir=tmp_path / "runs",
        dbt_executable=sys.executable,
    )


def test_a_command_still_running_is_stopped_with_its_materialization(resource: object) -> None:
    invocations = DbtInvocations()
    with invocations.tracking():
        invocation = running(resource.cli(SLEEP))  # type: ignore[attr-defined]
    assert invocation.process.poll() is None
    stopped = invocations.stop()
    assert invocation.process.poll() is not None
    assert len(stopped) == 1 and "time.sleep(600)" in stopped[0], stopped
    assert invocations.stop() == [], "a command is stopped once"


def test_each_materialization_stops_only_its_own_commands(resource: object) -> None:
    first, second = DbtInvocations(), DbtInvocations()
    with first.tracking():
        mine = running(resource.cli(SLEEP))  # type: ignore[attr-defined]
    with second.tracking():
        other = running(resource.cli(SLEEP))  # type: ignore[attr-defined]
    untracked = running(resource.cli(SLEEP))  # type: ignore[attr-defined]
    try:
        assert len(first.stop()) == 1
        assert mine.process.poll() is not None
        assert other.process.poll() is None and untracked.process.poll() is None
        assert len(second.stop()) == 1
        assert other.process.poll() is not None
    finally:
        for invocation in (mine, other, untracked):
            invocation.process.kill()
            invocation.process.communicate()


def test_a_finished_command_is_not_reported(resource: object) -> None:
    invocations = DbtInvocations()
    with invocations.tracking():
        invocation = resource.cli(["-c", "pass"])  # type: ignore[attr-defined]
    invocation.process.communicate(timeout=300)
    assert invocations.stop() == []


def test_a_command_started_in_a_thread_of_the_asset_is_the_materializations(tmp_path: Path) -> None:
    """A user's asset may start dbt from a thread of its own, outside the materialization's
    context: the resource Dagster set up for the materialization still keeps the command."""
    from concurrent.futures import ThreadPoolExecutor

    # Imported here, from this process's sys.modules as it is now (in-process nested pytest
    # runs of other tests may have replaced dagster's modules since collection).
    from dagster import asset, materialize
    from dagster_dbt import DbtCliResource

    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", encoding="utf-8")
    (project_dir / "profiles.yml").write_text("shop:\n  target: dbt_assets\n  outputs: {}\n", encoding="utf-8")
    project = TemporaryProject(project_dir=project_dir, profiles_dir=project_dir)
    dbt = relocated_cli_resource(DbtCliResource(project_dir=str(project_dir)), project, dbt_executable=sys.executable)  # type: ignore[arg-type]
    started: list[object] = []

    @asset(required_resource_keys={"dbt"})
    def orders(context) -> None:  # type: ignore[no-untyped-def]
        with ThreadPoolExecutor(1) as pool:
            started.append(running(pool.submit(context.resources.dbt.cli, SLEEP).result()))

    invocations = DbtInvocations()
    with invocations.tracking():
        assert materialize([orders], resources={"dbt": dbt}).success
    [invocation] = started
    try:
        assert len(invocations.stop()) == 1
        assert invocation.process.poll() is not None  # type: ignore[attr-defined]
    finally:
        invocation.process.kill()  # type: ignore[attr-defined]
        invocation.process.communicate()  # type: ignore[attr-defined]
