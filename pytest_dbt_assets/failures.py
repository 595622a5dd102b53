"""Failures in words: each errored dbt node, failed dbt test (with its first failing rows),
failed hook and failed step of a materialization, as one readable line each, read from dbt's
``run_results.json`` and Dagster's step events."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat.dagster_dbt import is_dbt_cli_error
from pytest_dbt_assets.database import failing_rows, missing_source_hint, source_label
from pytest_dbt_assets.errors import strip_ansi
from pytest_dbt_assets.project import DbtAssetsProject
from pytest_dbt_assets.selection import RELATION_TYPES

COMPILED_SQL_LABEL = "compiled SQL:"
FAILING_ROWS_LIMIT = 5
_MISSING_RELATION = re.compile(r"(?:Table|View|Schema) with name \"?([^\s\"!]+)\"? does not exist", re.IGNORECASE)
_DUPLICATE_OUTPUT = re.compile(r'returned an output "([^"]+)" multiple times')


def without_temp_paths(failure: str) -> str:
    """A failure line for a snapshot: the compiled SQL path lives in a per-run temp folder."""
    return "\n".join(line for line in failure.split("\n") if not line.strip().startswith(COMPILED_SQL_LABEL))


def read_run_results(runs_dir: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Each dbt invocation's target folder and its ``run_results.json`` results, sorted by
    node id (dbt lists them in completion order, which varies with its threads).

    dbt writes the file in place: one interrupted while writing it (a step that failed while
    dbt still ran is stopped with SIGINT) leaves it cut short. Such a file is skipped; the
    step's own failure still tells what went wrong."""
    found = []
    for results_path in sorted(runs_dir.glob("*/run_results.json")):
        try:
            results = json.loads(results_path.read_text(encoding="utf-8")).get("results", [])
        except ValueError:
            continue
        found.append((results_path.parent, sorted(results, key=lambda result: str(result.get("unique_id")))))
    return found


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
            if (served_hint := project.backend.failure_hint(message)) is not None:
                message += "\n" + served_hint
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
        if not parent or parent_id in selected_ids or parent.get("resource_type") not in RELATION_TYPES:
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
    sql = project.backend.to_duckdb_sql(sql) if sql.strip() else sql
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


HOOK_FIX = (
    "  The hook runs before every dbt command, in tests too, on the test database: what it reads "
    "must be there. Give it (a seed, or source rows: dbt_assets_data / dbt_assets_data_dir), or keep "
    "the hook out of tests with `{% if target.name != 'dbt_assets' %}` (the plugin's target)."
)


def command_failures(runs_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Readable lines for dbt commands of this run that stopped before any node ran and wrote
    no run_results.json: a failed ``on-run-start`` hook is named with the macro it calls (from
    dbt's JSON log: the node of the last line before dbt's ``Encountered an error``)."""
    lines = []
    for log in sorted(runs_dir.glob("*/dbt.log")):
        if (log.parent / "run_results.json").exists():
            continue
        node_id, error = _last_node_before_error(log)
        node = (manifest.get("nodes") or {}).get(node_id or "")
        if node is None or error is None or node.get("resource_type") != "operation":
            continue
        lines.append(_hook_failure_text(node, str(node_id), error, manifest) + "\n" + HOOK_FIX)
    return lines


def _last_node_before_error(log: Path) -> tuple[str | None, str | None]:
    """The node of the last JSON log line that names one before dbt's top-level error, and
    that error's text."""
    node_id: str | None = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        data, info = event.get("data") or {}, event.get("info") or {}
        if info.get("name") == "MainEncounteredError":
            return node_id, str(data.get("exc") or info.get("msg") or "").strip()
        node_id = (data.get("node_info") or {}).get("unique_id") or node_id
    return node_id, None


def step_failures(
    result: Any,
    *,
    has_dbt_detail: bool,
    check_outputs: Mapping[str, tuple[str, str]] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> list[str]:
    """Readable lines for failed steps: a Python asset's own exception, or dbt's CLI error
    when run_results.json did not say more (e.g. a compilation error or a missing var); two
    dbt tests with one name on one model (one Dagster check output given twice) are named,
    from ``check_outputs`` (output name -> (asset key, check name), see ``selection.Plan``)."""
    lines: list[str] = []
    for step_key, root in _root_errors(result):
        text = strip_ansi(_exception_text(root))
        duplicate = _DUPLICATE_OUTPUT.search(text)
        if duplicate and check_outputs is not None:
            lines.append(_duplicate_check_text(check_outputs, manifest or {}, step_key, duplicate.group(1), text))
        elif is_dbt_cli_error(root.cls_name):
            if has_dbt_detail:
                continue
            lines.append(f"dbt failed in step {step_key}: {text}")
        else:
            lines.append(f"step {step_key} raised {root.cls_name}: {text}")
    return lines


def _root_errors(result: Any) -> Iterator[tuple[str, Any]]:
    """Each failed step's key and the innermost error of its chain."""
    for event in result.all_events:
        if event.is_step_failure:
            root = event.step_failure_data.error
            while root is not None and root.cause is not None:
                root = root.cause
            if root is not None:
                yield event.step_key, root


def where_raised(result: Any) -> dict[str, str]:
    """Failed step key -> where its Python exception was raised, for the raised error's text
    (Dagster's own stack trace is not shown; ``failures`` keeps one line each)."""
    return {key: place for key, root in _root_errors(result) if (place := _raised_at(root.stack))}


def _raised_at(stack: Sequence[str]) -> str:
    """Where a Python asset's exception was raised (the innermost frame: the user's code, or
    the library it called), as Python's traceback prints it; Dagster's own stack trace is not
    shown."""
    if not stack:
        return ""
    return "\n  raised at:\n" + textwrap.indent(stack[-1].rstrip("\n"), "  ")


def _duplicate_check_text(
    check_outputs: Mapping[str, tuple[str, str]],
    manifest: Mapping[str, Any],
    step_key: str,
    output_name: str,
    text: str,
) -> str:
    """Two dbt tests with one name on one model are one Dagster asset check, reported twice."""
    if output_name not in check_outputs:
        return f"step {step_key} failed: {text}"
    model, check_name = check_outputs[output_name]
    tests = sorted(
        (node.get("original_file_path", ""), node.get("column_name") or "", node["unique_id"])
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "test" and node.get("name") == check_name
    )
    described = "; ".join(
        f"{unique_id}{f' on column {column}' if column else ''} ({path})" for path, column, unique_id in tests
    )
    files = sorted({path for path, _, _ in tests if path})
    where = f" in {', '.join(files)}" if files else ""
    return (
        f"dbt tests share the name {check_name} on {model}: {described or 'several tests'}. Dagster makes one "
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
