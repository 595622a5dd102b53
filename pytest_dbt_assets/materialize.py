"""Materialize a selection of the definitions under test, in this process, and describe
what was built in plain sorted data."""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.data import (
    describe_relations,
    failing_rows,
    has_data,
    load_sources,
    missing_source_hint,
    source_label,
    wait_until_free,
)
from pytest_dbt_assets.dbt.runner import release_duckdb
from pytest_dbt_assets.definitions import dbt_assets_definitions_of
from pytest_dbt_assets.errors import (
    MaterializationError,
    MissingSourceError,
    PartitionKeyError,
    SelectionError,
    strip_ansi,
)
from pytest_dbt_assets.project import DbtAssetsProject
from pytest_dbt_assets.relocate import relocate_resources, stop_invocations

if TYPE_CHECKING:
    from dagster import AssetKey, Definitions

ROW_COUNT_METADATA_KEY = "dagster/row_count"
COMPILED_SQL_LABEL = "compiled SQL:"
_DBT_SYNTAX_HINT = "dbt_select takes dbt's --select syntax, e.g. '+customers', 'tag:finance' or 'path:models/marts'."
_RELATION_TYPES = {"model", "seed", "snapshot"}
INDIRECT_SELECTION_VALUES = ("eager", "cautious", "buildable", "empty")
FAILING_ROWS_LIMIT = 5
_MISSING_RELATION = re.compile(r"(?:Table|View|Schema) with name \"?([^\s\"!]+)\"? does not exist", re.IGNORECASE)
_DUPLICATE_OUTPUT = re.compile(r'returned an output "([^"]+)" multiple times')
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
    indirect_selection: str | None = None,
    raise_on_error: bool = True,
    data: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> Materialization:
    """Run the selected assets of ``defs`` in this process against ``project``'s DuckDB.

    ``dbt_executable`` replaces the ``DbtCliResource``'s own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's (None: production's, dbt's default ``eager``).

    Raises:
        SelectionError: the selection matches nothing, or ``indirect_selection`` is not dbt's.
        PartitionKeyError: a partitioned asset is selected and ``partition_key`` is None.
        SourceDataError: a source's data cannot be loaded (see :func:`data.load_sources`).
        MissingSourceError: with ``raise_on_error``, dbt read a source that has no data.
        MaterializationError: with ``raise_on_error``, when anything failed; the message lists
            each failure (model name, dbt's error text, compiled SQL path; test and model with
            its first failing rows; a Python asset's own exception).
    """
    __tracebackhide__ = True
    from dagster import materialize

    validate_indirect_selection(indirect_selection)
    selected = resolve_selection(defs, select, dbt_select)
    if partition_key is None:
        validate_unpartitioned(defs, selected)
    nodes = DbtNodes.of(defs)
    sources = needed_sources(defs, nodes, selected)
    load_sources(
        project.duckdb_path,
        sources,
        provided=data or {},
        data_dir=data_dir,
        attached=project.attached_databases,
    )
    without_data = [source for source in sources if not has_data(source, data or {}, data_dir)]
    runs_dir = project.target_dir / "dbt_assets_runs" / f"run-{next(_run_numbers)}"
    bound = relocate_resources(
        {**(defs.resources or {}), **(resources or {})},
        project,
        vars=vars,
        runs_dir=runs_dir,
        dbt_executable=dbt_executable,
        indirect_selection=indirect_selection,
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
        # A step that failed while dbt was still running (Dagster rejected one of its
        # events) leaves dbt holding the database: stop it before anything opens the file.
        stop_invocations(runs_dir)
        release_duckdb()
    still_locked = wait_until_free(project.duckdb_path, project.attached_databases)

    materialization = describe_result(defs, project, nodes, selected, result, runs_dir, without_data=without_data)
    if still_locked:
        materialization.failures.append(
            f"the test database is still locked by another process after the run: {strip_ansi(still_locked)}"
        )
        materialization.success = False
    if raise_on_error and not materialization.success:
        hints = [line for line in materialization.failures if line.startswith("dbt source ")]
        others = [line for line in materialization.failures if line not in hints]
        message = "Materialization failed:\n" + "\n".join(f"- {line}" for line in others)
        if hints:
            raise MissingSourceError("\n".join(hints) + "\n" + message, materialization.failures)
        raise MaterializationError(message, materialization.failures)
    return materialization


def validate_indirect_selection(value: str | None) -> None:
    """Raise :class:`SelectionError` unless ``value`` is None or one of dbt's values."""
    __tracebackhide__ = True
    if value is not None and value not in INDIRECT_SELECTION_VALUES:
        raise SelectionError(
            f"indirect_selection={value!r} is not one of dbt's values: "
            + ", ".join(repr(v) for v in INDIRECT_SELECTION_VALUES)
            + ". Leave it out for production's 'eager' (a test runs when any of its parents is selected), "
            "or pass 'cautious' to run only tests whose parents are all selected."
        )


def validate_unpartitioned(defs: Definitions, selected: set[AssetKey]) -> None:
    """Raise :class:`PartitionKeyError` when a selected asset is partitioned: a run of it
    needs ``partition_key`` (Dagster's own check only says ``CheckError``)."""
    __tracebackhide__ = True
    asset_graph = defs.resolve_asset_graph()
    partitioned = sorted(
        (key.to_user_string(), asset_graph.get(key).partitions_def)
        for key in selected
        if asset_graph.get(key).partitions_def is not None
    )
    if not partitioned:
        return
    name, partitions_def = partitioned[0]
    keys = ", ".join(name for name, _ in partitioned[:5]) + (", ..." if len(partitioned) > 5 else "")
    raise PartitionKeyError(
        f"{keys} {'is' if len(partitioned) == 1 else 'are'} partitioned, and no partition_key was given. "
        f"Pass partition_key= to dbt_assets_materialize, e.g. "
        f"dbt_assets_materialize(..., partition_key={_example_partition(partitions_def)!r}). "
        f"Partitions of {name}: {describe_partitions(partitions_def)}."
    )


def describe_partitions(partitions_def: Any) -> str:
    """A few of the partition keys: all of up to 4, else the first two and the last."""
    try:
        keys = list(partitions_def.get_partition_keys())
    except Exception:  # noqa: BLE001 - dynamic partitions need an instance; say what it is
        return f"{type(partitions_def).__name__} (keys known at run time only)"
    if not keys:
        return "none yet"
    if len(keys) <= 4:
        return ", ".join(keys)
    return f"{keys[0]}, {keys[1]}, ..., {keys[-1]} ({len(keys)} in all)"


def _example_partition(partitions_def: Any) -> str:
    try:
        keys = list(partitions_def.get_partition_keys())
    except Exception:  # noqa: BLE001
        return "<key>"
    return keys[-1] if keys else "<key>"


def describe_result(
    defs: Definitions,
    project: DbtAssetsProject,
    nodes: DbtNodes,
    selected: set[AssetKey],
    result: Any,
    runs_dir: Path,
    *,
    without_data: Sequence[Mapping[str, Any]] = (),
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
    relation_counts, columns = describe_relations(project.duckdb_path, relations, project.attached_databases)
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
    selected_ids = {node["unique_id"] for key in selected if (node := nodes.by_key.get(key))}
    failures = dbt_failures(run_results, nodes.manifest, project, without_data=without_data, selected_ids=selected_ids)
    failures += step_failures(result, has_dbt_detail=bool(failures), defs=defs, manifest=nodes.manifest)
    failures = [strip_ansi(line) for line in failures]
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
    run_results: list[tuple[Path, list[dict[str, Any]]]],
    manifest: Mapping[str, Any],
    project: DbtAssetsProject,
    *,
    without_data: Sequence[Mapping[str, Any]] = (),
    selected_ids: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Readable lines for every errored node and failed test in this run's run_results.json.

    A relation that "does not exist" is explained: a source without data gets the three ways
    to give it (one line per source, first); a test's parent that this run did not build gets
    the two fixes. A failed test shows its first failing rows.
    """
    lines: list[str] = []
    source_lines: list[str] = []
    nodes = manifest.get("nodes", {})
    for target_path, results in run_results:
        for item in results:
            status = item.get("status")
            if status not in {"error", "fail"}:
                continue
            unique_id = item["unique_id"]
            node = nodes.get(unique_id, {})
            message = strip_ansi("\n".join(line.rstrip() for line in (item.get("message") or "").strip().splitlines()))
            name = node.get("name") or unique_id.split(".")[-1]
            resource_type = node.get("resource_type") or unique_id.split(".")[0]
            missing = {
                part.lower() for match in _MISSING_RELATION.findall(message) for part in (match, match.split(".")[-1])
            }
            for source in without_data:
                identifier = str(source.get("identifier") or source["name"]).lower()
                hint = missing_source_hint(source_label(source), source["source_name"], source["name"])
                if (identifier in missing or str(source["schema"]).lower() in missing) and hint not in source_lines:
                    source_lines.append(hint)
            if resource_type == "test":
                attached = node.get("attached_node") or next(iter(node.get("depends_on", {}).get("nodes", [])), "")
                on = f" on {attached.split('.')[0]} {attached.split('.')[-1]}" if attached else ""
                line = f"dbt test {name}{on} {'failed' if status == 'fail' else 'errored'}: {message}"
                line += _unbuilt_parent_hint(node, nodes, missing, selected_ids)
                if status == "fail":
                    line += _failing_rows_text(project, item, node, target_path)
                lines.append(line)
                continue
            if resource_type == "operation":
                lines.append(_hook_failure_text(node, unique_id, message, manifest))
                continue
            if not message:
                continue  # dbt said nothing here (a failed run-operation): the step's error says it
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
    return source_lines + lines


def _unbuilt_parent_hint(
    node: Mapping[str, Any], nodes: Mapping[str, Any], missing: set[str], selected_ids: set[str] | frozenset[str]
) -> str:
    """For a test that read a relation this run did not build: which parent, and both fixes."""
    for parent_id in sorted(node.get("depends_on", {}).get("nodes", [])):
        parent = nodes.get(parent_id)
        if not parent or parent_id in selected_ids or parent.get("resource_type") not in _RELATION_TYPES:
            continue
        if str(parent.get("alias") or parent["name"]).lower() not in missing:
            continue
        kind, parent_name = parent["resource_type"], parent["name"]
        return (
            f"\n  The test reads {kind} {parent_name}, which this run did not build: dbt's default indirect "
            f"selection (eager, as in production) runs a test when any of its parents is selected. Select "
            f"{parent_name} too (e.g. dbt_select='... +{parent_name}'), or pass indirect_selection='cautious' "
            "to run only tests whose parents are all selected."
        )
    return ""


def _failing_rows_text(
    project: DbtAssetsProject, item: Mapping[str, Any], node: Mapping[str, Any], target_path: Path
) -> str:
    """The test's first failing rows, read with its compiled SQL from that run's target folder."""
    sql = item.get("compiled_code") or ""
    if not sql and node:
        compiled = target_path / "compiled" / node.get("package_name", project.project_name)
        path = compiled / node.get("original_file_path", "") / node.get("path", "")
        if not path.is_file():
            path = compiled / node.get("path", "")
        sql = path.read_text(encoding="utf-8") if path.is_file() else ""
    found = failing_rows(project.duckdb_path, project.attached_databases, sql, FAILING_ROWS_LIMIT)
    if not found or not found[1]:
        return ""
    names, rows = found
    total = item.get("failures")
    shown = f"first {len(rows)} of {total}" if isinstance(total, int) and total > len(rows) else f"{len(rows)}"
    body = "\n".join(
        "    " + ", ".join(f"{name}={_cell(value)}" for name, value in zip(names, row, strict=False)) for row in rows
    )
    return f"\n  failing rows ({shown}):\n{body}"


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    return str(value)


_MACRO_CALL = re.compile(r"\{\{-?\s*([A-Za-z_][\w.]*)\s*\(")


def _hook_failure_text(node: Mapping[str, Any], unique_id: str, message: str, manifest: Mapping[str, Any]) -> str:
    """``dbt on-run-start hook ... failed in macro ...``: the hook and the macros it calls."""
    name = node.get("name") or unique_id.split(".")[-1]
    kind = "on-run-start" if "on-run-start" in name else "on-run-end" if "on-run-end" in name else "operation"
    macros_by_name: dict[str, Mapping[str, Any]] = {}
    for macro in manifest.get("macros", {}).values():
        if macro.get("package_name") == node.get("package_name") or macro["name"] not in macros_by_name:
            macros_by_name[macro["name"]] = macro
    called = []
    for call in _MACRO_CALL.findall(node.get("raw_code") or ""):
        macro = macros_by_name.get(call.rsplit(".", 1)[-1])
        where = f" ({macro['original_file_path']})" if macro and macro.get("original_file_path") else ""
        called.append(f"{call}{where}")
    index = name.rsplit("-", 1)[-1]
    hook = f"{kind} hook #{int(index) + 1}" if index.isdigit() else f"{kind} hook {name}"
    raw = " ".join((node.get("raw_code") or "").split())
    source = f" `{raw}`" if raw else ""
    in_macro = f", calling macro {', '.join(called)}" if called else ""
    defined_in = (node.get("original_file_path") or "dbt_project.yml").removeprefix("./")
    detail = textwrap.indent(message, "  ")
    return f"dbt {hook}{source} ({defined_in}){in_macro} failed:\n{detail}"


def step_failures(
    result: Any,
    *,
    has_dbt_detail: bool,
    defs: Definitions | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> list[str]:
    """Readable lines for failed steps: a Python asset's own exception, or dbt's CLI error
    when run_results.json did not say more (e.g. a compilation error or a missing var); two
    dbt tests with one name on one model (one Dagster check output given twice) are named."""
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
        text = strip_ansi(_exception_text(root))
        duplicate = _DUPLICATE_OUTPUT.search(text)
        if duplicate and defs is not None:
            lines.append(_duplicate_check_text(defs, manifest or {}, event.step_key, duplicate.group(1), text))
        elif root.cls_name == "DagsterDbtCliRuntimeError":
            if has_dbt_detail:
                continue
            lines.append(f"dbt failed in step {event.step_key}: {text}")
        else:
            lines.append(f"step {event.step_key} raised {root.cls_name}: {text}")
    return lines


def _duplicate_check_text(
    defs: Definitions, manifest: Mapping[str, Any], step_key: str, output_name: str, text: str
) -> str:
    """Two dbt tests with one name on one model are one Dagster asset check, reported twice."""
    spec = None
    for assets_def in dbt_assets_definitions_of(defs):
        spec = assets_def.node_check_specs_by_output_name.get(output_name) or spec
    if spec is None:
        return f"step {step_key} failed: {text}"
    model = spec.asset_key.to_user_string()
    tests = sorted(
        (node.get("original_file_path", ""), node.get("column_name") or "", node["unique_id"])
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "test" and node.get("name") == spec.name
    )
    described = "; ".join(
        f"{unique_id}{f' on column {column}' if column else ''} ({path})" for path, column, unique_id in tests
    )
    files = sorted({path for path, _, _ in tests if path})
    where = f" in {', '.join(files)}" if files else ""
    return (
        f"dbt tests share the name {spec.name} on {model}: {described or 'several tests'}. Dagster makes one "
        f'asset check per test name, so step {step_key} failed ("returned an output ... multiple times") '
        f"while dbt was running. Give each test a distinct `name:`{where}."
    )


def _exception_text(error: Any) -> str:
    """The exception's own message: Dagster's serialized message starts with the class name
    (``"ValueError: boom"``, ``"_duckdb.BinderException: ..."``), which the caller already shows."""
    message = error.message.strip()
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        return rest.strip()
    return message
