"""Run a planned selection of the definitions under test in this process, then describe
what was built in plain sorted data.

One descent: the caller resolves the selection once (:func:`selection.plan_run`), then
:func:`materialize_plan` loads the sources (:mod:`database`), runs Dagster with every dbt
resource moved to the temporary project (:mod:`relocate`, the only calls into it), and
describes the result (:mod:`failures`, :mod:`database`), none of which reads the
definitions again. The session imports this module on the first materialization only.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import AssetCheckSeverity, AssetSelection, Definitions, ExecuteInProcessResult, define_asset_job

from pytest_dbt_assets.database import describe_relations, has_data, load_sources, wait_until_free
from pytest_dbt_assets.dbt.runner import dbt_environment, release_duckdb
from pytest_dbt_assets.dbt_resource import DbtInvocations
from pytest_dbt_assets.errors import MaterializationError, materialization_error, strip_ansi
from pytest_dbt_assets.failures import (
    command_failures,
    dbt_failures,
    read_run_results,
    step_failures,
    where_raised,
    without_temp_paths,
)
from pytest_dbt_assets.mermaid import flowchart
from pytest_dbt_assets.project import DbtAssetsProject
from pytest_dbt_assets.quiet import dbt_echo_kept_in, upstream_notes_dropped, user_lines_logger
from pytest_dbt_assets.relocate import relocate_resources
from pytest_dbt_assets.selection import Plan, plan_run

ROW_COUNT_METADATA_KEY = "dagster/row_count"
_run_numbers = itertools.count(1)


@dataclass
class Materialization:
    """What one ``dbt_assets_materialize`` call built.

    Attributes:
        success: True when every selected step succeeded (``warn`` tests do not count).
        materialized: sorted keys of the assets materialized.
        row_counts: key -> rows, for every relation built (seeds, tables, views, incremental
            models, snapshots) and for Python assets that report ``dagster/row_count``.
        checks: check name -> ``"passed"``, ``"failed"``, ``"warn"`` or ``"skipped"``.
        failures: one readable message per failure (model errors, failing tests, exceptions).
        result: the ``dagster.ExecuteInProcessResult``.
        columns: key -> {column: DuckDB type} of each relation built.
        statuses: selected key -> ``"materialized"``, ``"failed"`` or ``"skipped"``.
        deps: selected key -> sorted parents that were selected too.
    """

    success: bool
    materialized: list[str]
    row_counts: dict[str, int]
    checks: dict[str, str]
    failures: list[str]
    result: Any = field(repr=False, compare=False)
    columns: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    statuses: dict[str, str] = field(default_factory=dict, repr=False)
    deps: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def mermaid(self) -> str:
        """The selected assets as a Mermaid flowchart, styled materialized / failed / skipped."""
        return flowchart(self.deps, statuses=self.statuses)

    def summary(self, *, columns: bool = False) -> dict[str, Any]:
        """Plain sorted data for a snapshot: keys, row counts and check results.

        With ``columns=True``, each relation's column names and DuckDB types are added.
        """
        assets: dict[str, Any] = {}
        for key in self.materialized:
            entry: dict[str, Any] = {"rows": self.row_counts.get(key)}
            if columns and key in self.columns:
                entry["columns"] = dict(self.columns[key])
            assets[key] = entry
        data: dict[str, Any] = {
            "success": self.success,
            "assets": assets,
            "checks": dict(sorted(self.checks.items())),
        }
        if self.failures:
            data["failures"] = sorted(without_temp_paths(line) for line in self.failures)
        return data

    def error(self) -> MaterializationError | None:
        """The error to raise for this materialization: None when it succeeded, else one
        naming each failure (see :func:`errors.materialization_error`)."""
        if self.success:
            return None
        return materialization_error(self.failures, where_raised(self.result) if self.result is not None else None)


def materialize_plan(
    defs: Definitions,
    project: DbtAssetsProject,
    plan: Plan,
    *,
    vars: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    indirect_selection: str | None = None,
    data: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> Materialization:
    """Run the planned selection of ``defs`` in this process against ``project``'s database,
    on the sources ``plan`` names (loaded first, see :func:`database.load_sources`), and
    describe it. A failed run is described, not raised: see :meth:`Materialization.error`.

    ``dbt_executable`` replaces the ``DbtCliResource``'s own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's (None: production's, dbt's default ``eager``).

    Raises:
        SourceDataError: a source's data cannot be loaded.
    """
    __tracebackhide__ = True
    prepare_sources(project, plan.sources, provided=data or {}, data_dir=data_dir)
    without_data = [source for source in plan.sources if not has_data(source, data or {}, data_dir)]
    result, runs_dir = _run(
        defs,
        project,
        list(plan.keys),
        resources=resources,
        dbt_executable=dbt_executable,
        vars=vars,
        partition_key=partition_key,
        indirect_selection=indirect_selection,
    )
    # It waits for the database to be free, on the connection that reads the row counts.
    return describe_result(project, plan, result, runs_dir, without_data=without_data)


def build_baseline(
    defs: Definitions,
    project: DbtAssetsProject,
    *,
    dbt_select: str | None,
    resources: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> list[str]:
    """Build the dbt assets ``dbt_select`` names (every dbt asset when None) into ``project``'s
    database, without their dbt tests, through the same Dagster run a test's materialization
    makes (the user's ``@dbt_assets`` body, the worker); sources load as for any test, from
    ``data_dir`` or as empty declared tables (never from a test's rows). Returns the labels
    of the sources it loaded.

    Raises:
        SelectionError: ``dbt_select`` matches no dbt asset.
        PartitionKeyError: it selects a partitioned asset.
        MaterializationError: a model failed; the message lists the failures.
    """
    __tracebackhide__ = True
    plan = plan_run(defs, None, dbt_select or "fqn:*", dbt_only=True)
    loaded = prepare_sources(project, plan.sources, provided={}, data_dir=data_dir)
    result, runs_dir = _run(
        defs,
        project,
        # Without the checks: dagster-dbt then runs no dbt test (indirect selection empty).
        AssetSelection.assets(*plan.keys).without_checks(),
        resources=resources,
        dbt_executable=dbt_executable,
    )
    if still_locked := wait_until_free(project.duckdb_path, project.attached_databases):
        raise MaterializationError(f"the test database is still locked after the baseline's run: {still_locked}", [])
    if not result.success:
        without_data = [source for source in plan.sources if not has_data(source, {}, data_dir)]
        failures = describe_result(project, plan, result, runs_dir, without_data=without_data).failures
        raise MaterializationError("Materialization failed:\n" + "\n".join(f"- {line}" for line in failures), failures)
    return loaded


def prepare_sources(
    project: DbtAssetsProject,
    sources: Sequence[Mapping[str, Any]],
    *,
    provided: Mapping[str, Any],
    data_dir: Path | None,
) -> list[str]:
    """Make the databases and schemas the project's sources name exist, as in production, then
    load the data of ``sources`` (see :func:`database.load_sources`); the labels loaded."""
    backend = project.backend
    schemas = {
        (str(source.get("database") or ""), str(source["schema"]))
        for each in project.all_projects
        for source in (each.manifest.get("sources") or {}).values()
    }
    backend.create_databases(project.duckdb_path, project.attached_databases, schemas)
    return load_sources(
        project.duckdb_path,
        sources,
        provided=provided,
        data_dir=data_dir,
        attached=project.attached_databases,
        identifier=backend.identifier,
        column_type=backend.column_type,
    )


def _run(
    defs: Definitions,
    project: DbtAssetsProject,
    selection: Any,
    *,
    resources: Mapping[str, Any] | None,
    dbt_executable: str | None,
    vars: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    indirect_selection: str | None = None,
) -> tuple[ExecuteInProcessResult, Path]:
    """One in-process Dagster run of ``selection`` with every dbt resource moved to ``project``:
    the run's result and its runs folder. A dbt process being stopped may still hold the test
    database: wait for it (:func:`database.wait_until_free`) before reading the database."""
    runs_dir = project.target_dir / "dbt_assets_runs" / f"run-{next(_run_numbers)}"
    backend = project.backend
    bound = relocate_resources(
        backend.test_resources({**(defs.resources or {}), **(resources or {})}, project.duckdb_path),
        project,
        vars=vars,
        runs_dir=runs_dir,
        dbt_executable=dbt_executable,
        indirect_selection=indirect_selection,
    )
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]
    invocations = DbtInvocations()
    try:
        # dbt's processes (dagster-dbt copies this environment) and this one's warehouse
        # clients reach the test database, and nothing else.
        with (
            invocations.tracking(),
            dbt_environment(backend.dbt_environment(project.duckdb_path)),
            backend.serving(project.duckdb_path, allowed=project.sandbox),
        ):
            result = _execute(assets, selection, bound, partition_key, runs_dir)
    finally:
        # A step that failed while dbt was still running (Dagster rejected one of its
        # events) leaves dbt holding the database: stop it before anything opens the file.
        invocations.stop()
        release_duckdb()
    return result, runs_dir


def _execute(
    assets: Sequence[Any], selection: Any, resources: Mapping[str, Any], partition_key: str | None, runs_dir: Path
) -> ExecuteInProcessResult:
    """``dagster.materialize`` with the run's loggers chosen: a failed test shows the user's own
    log lines once, not Dagster's events (a failed step's stack trace twice) nor dbt's echoed
    output (kept in ``runs_dir``), since `failures` tells what failed."""
    job_name = "dbt_assets_materialize"
    defs = Definitions(
        jobs=[define_asset_job(job_name, selection=selection)],
        assets=assets,
        resources=resources,
        loggers={"console": user_lines_logger()},
    )
    with dbt_echo_kept_in(runs_dir / "dbt-output.log"), upstream_notes_dropped():
        return defs.resolve_job_def(job_name).execute_in_process(
            # A job's logger runs only when the run's config names it.
            run_config={"loggers": {"console": {}}},
            partition_key=partition_key,
            raise_on_error=False,
        )


def describe_result(
    project: DbtAssetsProject,
    plan: Plan,
    result: ExecuteInProcessResult,
    runs_dir: Path,
    *,
    without_data: Sequence[Mapping[str, Any]] = (),
) -> Materialization:
    """What the run of ``plan`` built, read from Dagster's events, the database and dbt's
    artifacts in ``runs_dir``; the failures in words (:mod:`failures`)."""
    nodes = plan.nodes
    materialized: dict[str, Any] = {}
    python_row_counts: dict[str, int] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            key = mat.asset_key.to_user_string()
            materialized[key] = mat.asset_key
            row_count: Any = mat.metadata.get(ROW_COUNT_METADATA_KEY)
            if row_count is not None and mat.asset_key not in nodes.by_key:
                python_row_counts[key] = int(row_count.value)

    relations = {
        key: node["relation_name"]
        for key, asset_key in materialized.items()
        if (node := nodes.by_key.get(asset_key)) and node.get("relation_name")
    }
    relation_counts, columns, still_locked = describe_relations(
        project.duckdb_path, relations, project.attached_databases
    )
    row_counts = {**relation_counts, **python_row_counts}

    checks = dict.fromkeys(plan.checks, "skipped")
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            status = "passed"
        elif evaluation.severity == AssetCheckSeverity.WARN:
            status = "warn"
        else:
            status = "failed"
        checks[evaluation.check_name] = status

    run_results = read_run_results(runs_dir)
    failures = dbt_failures(
        run_results, nodes.manifest, project, without_data=without_data, selected_ids=plan.unique_ids
    )
    failures += command_failures(runs_dir, nodes.manifest)
    failures += step_failures(
        result, has_dbt_detail=bool(failures), check_outputs=plan.check_outputs, manifest=nodes.manifest
    )
    failures = [strip_ansi(line) for line in failures]
    if still_locked:
        failures.append(
            f"the test database is still locked by another process after the run: {strip_ansi(still_locked)}"
        )
    failed = failed_keys(plan, result, run_results)
    statuses = {
        key.to_user_string(): (
            "materialized" if key.to_user_string() in materialized else "failed" if key in failed else "skipped"
        )
        for key in plan.keys
    }
    return Materialization(
        success=bool(result.success) and not failures,
        materialized=sorted(materialized),
        row_counts=dict(sorted(row_counts.items())),
        checks=dict(sorted(checks.items())),
        failures=failures,
        result=result,
        columns=columns,
        statuses=dict(sorted(statuses.items())),
        deps=dict(sorted(plan.parents.items())),
    )


def failed_keys(
    plan: Plan, result: ExecuteInProcessResult, run_results: list[tuple[Path, list[dict[str, Any]]]]
) -> set[Any]:
    """Keys whose dbt node errored, and keys of Python assets whose step failed."""
    key_by_unique_id = {node["unique_id"]: key for key, node in plan.nodes.by_key.items()}
    failed = set()
    for _, results in run_results:
        for item in results:
            if item.get("status") == "error" and item.get("unique_id") in key_by_unique_id:
                failed.add(key_by_unique_id[item["unique_id"]])
    failed_steps = {event.step_key for event in result.all_events if event.is_step_failure}
    for step, keys in plan.python_steps.items():
        if step in failed_steps:
            failed |= keys
    return failed
