"""Materialize a selection of the definitions under test, in this process, and describe
what was built in plain sorted data."""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.data import describe_relations, load_sources
from pytest_dbt_assets.definitions import dbt_assets_definitions_of
from pytest_dbt_assets.errors import MaterializationError, SelectionError
from pytest_dbt_assets.project import DbtAssetsProject, release_duckdb
from pytest_dbt_assets.relocate import relocate_resources

if TYPE_CHECKING:
    from dagster import AssetKey, Definitions

ROW_COUNT_METADATA_KEY = "dagster/row_count"
COMPILED_SQL_LABEL = "compiled SQL:"
_DBT_SYNTAX_HINT = "dbt_select takes dbt's --select syntax, e.g. '+customers', 'tag:finance' or 'path:models/marts'."
_RELATION_TYPES = {"model", "seed", "snapshot"}
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
        from pytest_dbt_assets.mermaid import flowchart

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
            data["failures"] = sorted(_without_temp_paths(line) for line in self.failures)
        return data


def _without_temp_paths(failure: str) -> str:
    """A failure line for a snapshot: the compiled SQL path lives in a per-run temp folder."""
    return "\n".join(line for line in failure.split("\n") if not line.strip().startswith(COMPILED_SQL_LABEL))


@dataclass(frozen=True)
class DbtNodes:
    """dbt nodes of the definitions under test, indexed by their Dagster asset key."""

    by_key: dict[AssetKey, dict[str, Any]]
    sources_by_key: dict[AssetKey, dict[str, Any]]
    manifest: dict[str, Any]

    @classmethod
    def of(cls, defs: Definitions) -> DbtNodes:
        from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

        by_key: dict[Any, dict[str, Any]] = {}
        sources_by_key: dict[Any, dict[str, Any]] = {}
        manifest: Mapping[str, Any] = {}
        for assets_def in dbt_assets_definitions_of(defs):
            manifest, translator, project = get_manifest_and_translator_from_dbt_assets([assets_def])
            for node in manifest["nodes"].values():
                if node["resource_type"] in _RELATION_TYPES:
                    by_key[_asset_key(translator, manifest, node, project)] = node
            for source in manifest["sources"].values():
                sources_by_key[_asset_key(translator, manifest, source, project)] = source
        return cls(by_key=by_key, sources_by_key=sources_by_key, manifest=dict(manifest))


def _asset_key(translator: Any, manifest: Mapping[str, Any], node: Mapping[str, Any], project: Any) -> AssetKey:
    try:
        return translator.get_asset_spec(manifest, node["unique_id"], project).key
    except AttributeError:  # translators of older dagster-dbt
        return translator.get_asset_key(node)


def resolve_selection(
    defs: Definitions, select: Any = None, dbt_select: str | Sequence[str] | None = None
) -> set[AssetKey]:
    """The asset keys that ``select`` (Dagster syntax) and ``dbt_select`` (dbt syntax) name.

    Both may be given: the run takes their union. Neither: every materializable asset.
    Raises :class:`SelectionError` quoting the selection when it matches nothing.
    """
    __tracebackhide__ = True
    from dagster import AssetSelection
    from dagster_dbt import build_dbt_asset_selection

    asset_graph = defs.resolve_asset_graph()
    materializable = set(asset_graph.materializable_asset_keys)
    if select is None and dbt_select is None:
        return materializable

    keys: set[AssetKey] = set()
    if select is not None:
        try:
            if isinstance(select, str):
                selection = AssetSelection.from_string(select)
            else:
                selection = AssetSelection.from_coercible(select)
            matched = set(selection.resolve(asset_graph)) & materializable
        except Exception as exc:  # noqa: BLE001 - any Dagster selection error, told in words
            raise SelectionError(f"select={select!r} is not a valid Dagster asset selection: {exc}") from None
        if not matched:
            raise SelectionError(
                f"select={select!r} matches no materializable asset. Known keys: "
                + ", ".join(sorted(k.to_user_string() for k in materializable))
            )
        keys |= matched
    if dbt_select is not None:
        words = dbt_select if isinstance(dbt_select, str) else " ".join(dbt_select)
        dbt_defs = dbt_assets_definitions_of(defs)
        if not dbt_defs:
            raise SelectionError(f"dbt_select={words!r} given, but the definitions hold no @dbt_assets.")
        matched = set()
        for assets_def in dbt_defs:
            try:
                matched |= set(build_dbt_asset_selection([assets_def], dbt_select=words).resolve(asset_graph))
            except Exception as exc:  # noqa: BLE001 - dbt's selector errors have no common base
                raise SelectionError(
                    f"dbt_select={words!r} is not a valid dbt selection: {_dbt_error_text(exc)}. {_DBT_SYNTAX_HINT}"
                ) from None
        matched &= materializable
        if not matched:
            raise SelectionError(
                f"dbt_select={words!r} matches no dbt asset. Check the model names, tags and "
                f"paths in the selection. {_DBT_SYNTAX_HINT}"
            )
        keys |= matched
    return keys


def _dbt_error_text(exc: BaseException) -> str:
    """dbt's message without its ``Runtime Error`` heading, on one line."""
    text = str(getattr(exc, "msg", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith("Error"):
        lines = lines[1:]
    return " ".join(lines).rstrip(".")


def needed_sources(defs: Definitions, nodes: DbtNodes, selected: set[AssetKey]) -> list[dict[str, Any]]:
    """dbt sources that a selected asset reads and no selected asset produces."""
    asset_graph = defs.resolve_asset_graph()
    parents: set[Any] = set()
    for key in selected:
        parents |= set(asset_graph.get(key).parent_keys)
    return [source for key, source in nodes.sources_by_key.items() if key in parents and key not in selected]


def materialize_assets(
    defs: Definitions,
    project: DbtAssetsProject,
    *,
    select: Any = None,
    dbt_select: str | Sequence[str] | None = None,
    vars: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    raise_on_error: bool = True,
    data: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> Materialization:
    """Run the selected assets of ``defs`` in this process against ``project``'s DuckDB.

    ``dbt_executable`` replaces the ``DbtCliResource``'s own (the plugin's warm dbt worker).

    Raises:
        SelectionError: the selection matches nothing.
        SourceDataError: a source the run reads has no data (see :func:`data.load_sources`).
        MaterializationError: with ``raise_on_error``, when anything failed; the message lists
            each failure (model name, dbt's error text, compiled SQL path; test and model; a
            Python asset's own exception).
    """
    __tracebackhide__ = True
    from dagster import materialize

    selected = resolve_selection(defs, select, dbt_select)
    nodes = DbtNodes.of(defs)
    load_sources(project.duckdb_path, needed_sources(defs, nodes, selected), provided=data or {}, data_dir=data_dir)
    runs_dir = project.target_dir / "dbt_assets_runs" / f"run-{next(_run_numbers)}"
    bound = relocate_resources(
        {**(defs.resources or {}), **(resources or {})},
        project,
        vars=vars,
        runs_dir=runs_dir,
        dbt_executable=dbt_executable,
    )
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]
    try:
        result = materialize(
            assets,  # type: ignore[arg-type]
            selection=sorted(selected, key=lambda k: k.to_user_string()),
            resources=bound,
            partition_key=partition_key,
            raise_on_error=False,
            # Dagster logs every event at DEBUG to the console; pytest would capture ~100
            # lines per run and show them on failure, where `failures` already says it all.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    finally:
        release_duckdb()

    materialization = describe_result(defs, project, nodes, selected, result, runs_dir)
    if raise_on_error and not materialization.success:
        raise MaterializationError(
            "Materialization failed:\n" + "\n".join(f"- {line}" for line in materialization.failures),
            materialization.failures,
        )
    return materialization


def describe_result(
    defs: Definitions,
    project: DbtAssetsProject,
    nodes: DbtNodes,
    selected: set[AssetKey],
    result: Any,
    runs_dir: Path,
) -> Materialization:
    from dagster import AssetCheckSeverity

    materialized: dict[str, Any] = {}
    python_row_counts: dict[str, int] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            key = mat.asset_key.to_user_string()
            materialized[key] = mat.asset_key
            row_count = mat.metadata.get(ROW_COUNT_METADATA_KEY)
            if row_count is not None and mat.asset_key not in nodes.by_key:
                python_row_counts[key] = int(row_count.value)

    relations = {
        key: node["relation_name"]
        for key, asset_key in materialized.items()
        if (node := nodes.by_key.get(asset_key)) and node.get("relation_name")
    }
    relation_counts, columns = describe_relations(project.duckdb_path, relations)
    row_counts = {**relation_counts, **python_row_counts}

    checks: dict[str, str] = {}
    asset_graph = defs.resolve_asset_graph()
    for key in selected:
        for check_key in asset_graph.get(key).check_keys:
            checks[check_key.name] = "skipped"
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            status = "passed"
        elif evaluation.severity == AssetCheckSeverity.WARN:
            status = "warn"
        else:
            status = "failed"
        checks[evaluation.check_name] = status

    run_results = read_run_results(runs_dir)
    failures = dbt_failures(run_results, nodes.manifest, project)
    failures += step_failures(result, has_dbt_detail=bool(failures))
    failed = failed_keys(defs, nodes, result, run_results)
    statuses = {
        key.to_user_string(): (
            "materialized" if key.to_user_string() in materialized else "failed" if key in failed else "skipped"
        )
        for key in selected
    }
    deps = {
        key.to_user_string(): sorted(p.to_user_string() for p in asset_graph.get(key).parent_keys if p in selected)
        for key in selected
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
        deps=dict(sorted(deps.items())),
    )


def read_run_results(runs_dir: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Each dbt invocation's target folder and its ``run_results.json`` results, sorted by
    node id (dbt lists them in completion order, which varies with its threads)."""
    found = []
    for results_path in sorted(runs_dir.glob("*/run_results.json")):
        results = json.loads(results_path.read_text(encoding="utf-8")).get("results", [])
        found.append((results_path.parent, sorted(results, key=lambda result: str(result.get("unique_id")))))
    return found


def failed_keys(
    defs: Definitions, nodes: DbtNodes, result: Any, run_results: list[tuple[Path, list[dict[str, Any]]]]
) -> set[AssetKey]:
    """Keys whose dbt node errored, and keys of Python assets whose step failed."""
    key_by_unique_id = {node["unique_id"]: key for key, node in nodes.by_key.items()}
    failed = set()
    for _, results in run_results:
        for item in results:
            if item.get("status") == "error" and item.get("unique_id") in key_by_unique_id:
                failed.add(key_by_unique_id[item["unique_id"]])
    failed_steps = {event.step_key for event in result.all_events if event.is_step_failure}
    from dagster import AssetsDefinition

    dbt_defs = dbt_assets_definitions_of(defs)
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, AssetsDefinition) or assets_def in dbt_defs or not assets_def.is_executable:
            continue
        if assets_def.node_def.name in failed_steps:
            failed |= set(assets_def.keys)
    return failed


def dbt_failures(
    run_results: list[tuple[Path, list[dict[str, Any]]]], manifest: Mapping[str, Any], project: DbtAssetsProject
) -> list[str]:
    """Readable lines for every errored node and failed test in this run's run_results.json."""
    lines: list[str] = []
    nodes = manifest.get("nodes", {})
    for target_path, results in run_results:
        for item in results:
            status = item.get("status")
            if status not in {"error", "fail"}:
                continue
            unique_id = item["unique_id"]
            node = nodes.get(unique_id, {})
            message = "\n".join(line.rstrip() for line in (item.get("message") or "").strip().splitlines())
            name = node.get("name") or unique_id.split(".")[-1]
            resource_type = node.get("resource_type") or unique_id.split(".")[0]
            if resource_type == "test":
                attached = node.get("attached_node") or next(iter(node.get("depends_on", {}).get("nodes", [])), "")
                on = f" on {attached.split('.')[0]} {attached.split('.')[-1]}" if attached else ""
                lines.append(f"dbt test {name}{on} {'failed' if status == 'fail' else 'errored'}: {message}")
                continue
            compiled = (
                target_path
                / "compiled"
                / node.get("package_name", project.project_name)
                / node.get("original_file_path", "")
            )
            where = f"\n  {COMPILED_SQL_LABEL} {compiled}" if node and compiled.is_file() else ""
            defined_in = node.get("original_file_path", unique_id)
            detail = textwrap.indent(message, "  ")
            lines.append(f"dbt {resource_type} {name} ({defined_in}) failed:\n{detail}{where}")
    return lines


def step_failures(result: Any, *, has_dbt_detail: bool) -> list[str]:
    """Readable lines for failed steps: a Python asset's own exception, or dbt's CLI error
    when run_results.json did not say more (e.g. a compilation error or a missing var)."""
    lines: list[str] = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        root = error
        while root is not None and root.cause is not None:
            root = root.cause
        if root is None:
            continue
        if root.cls_name == "DagsterDbtCliRuntimeError":
            if has_dbt_detail:
                continue
            lines.append(f"dbt failed in step {event.step_key}: {_exception_text(root)}")
        else:
            lines.append(f"step {event.step_key} raised {root.cls_name}: {_exception_text(root)}")
    return lines


def _exception_text(error: Any) -> str:
    """The exception's own message: Dagster's serialized message starts with the class name
    (``"ValueError: boom"``, ``"_duckdb.BinderException: ..."``), which the caller already shows."""
    message = error.message.strip()
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        return rest.strip()
    return message
