"""One revision's asset graph as a plain-data record, to compare with another revision's.

The record (format 1) holds, per asset key, what a change can touch: its kind, group,
parents, checks, declared columns, and short fingerprints ("facets") of its SQL, YAML config,
the macros it calls, its seed file, its Python code and code version, and its translator
output. Both sides of a comparison build it the same way: the base revision in a pytest run
of its own tree (:mod:`pytest_dbt_assets.diff.revision`), the working tree in this process.
Nothing in it depends on where the tree lies (no absolute path is hashed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.compat.dagster import asset_function
from pytest_dbt_assets.graph import AssetGraph
from pytest_dbt_assets.selection import DbtNodes, dbt_assets_definitions_of

if TYPE_CHECKING:
    from dagster import Definitions

FORMAT = 1
# Node fields that are YAML or config, as `state:modified.configs` and friends read them.
_YAML_FIELDS = ("config", "description", "columns", "meta", "tags", "docs", "contract", "constraints")
# Metadata that dagster-dbt and Dagster attach themselves: it repeats the manifest (the dbt
# facets cover it) or names files by absolute path (which differ between the two trees).
_OWN_METADATA_PREFIXES = ("dagster/", "dagster_dbt/", "dagster-dbt/")


def digest(value: Any) -> str:
    """A short, stable fingerprint of plain data."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_graph(defs: Definitions, graph: AssetGraph) -> dict[str, Any]:
    """The record of ``defs`` (whose resolved graph is ``graph``): see the module docstring."""
    resolved = defs.resolve_asset_graph()
    nodes = DbtNodes.of(defs)
    dbt_functions = {
        key.to_user_string(): asset_function(assets_def)
        for assets_def in dbt_assets_definitions_of(defs)
        for key in assets_def.keys
    }
    dbt_by_key = {key.to_user_string(): node for key, node in nodes.by_key.items()}
    assets: dict[str, Any] = {}
    for asset_key in sorted(resolved.get_all_asset_keys(), key=lambda key: key.to_user_string()):
        key = asset_key.to_user_string()
        node = resolved.get(asset_key)
        dbt_node = dbt_by_key.get(key)
        facets: dict[str, str] = {"spec": _spec_facet(node, (dbt_node or {}).get("raw_code"))}
        entry: dict[str, Any] = {
            "kind": "external",
            "group": graph.groups.get(key),
            "deps": list(graph.deps.get(key, [])),
            "checks": list(graph.checks.get(key, [])),
            "columns": {},
        }
        if dbt_node is not None:
            entry["kind"] = f"dbt_{dbt_node['resource_type']}"
            entry["unique_id"] = dbt_node["unique_id"]
            entry["relation"] = dbt_node.get("relation_name")
            entry["columns"] = declared_columns(dbt_node)
            facets.update(dbt_facets(dbt_node, nodes.manifest.get("macros") or {}))
            if (code := _source_digest(dbt_functions.get(key))) is not None:
                facets["python_code"] = code
        elif node.is_executable:
            entry["kind"] = "python"
            if node.code_version is not None:
                facets["code_version"] = node.code_version
            if (code := _source_digest(asset_function(node.assets_def))) is not None:
                facets["python_code"] = code
        entry["facets"] = dict(sorted(facets.items()))
        assets[key] = entry
    data = graph.to_data()
    return {"format": FORMAT, "assets": assets, "jobs": data.get("jobs", {}), "schedules": data.get("schedules", {})}


def dbt_facets(node: Mapping[str, Any], macros: Mapping[str, Any]) -> dict[str, str]:
    """A dbt node's facets: its file (``sql``, or ``seed`` for a seed's CSV), its YAML and
    config, and the bodies of the macros it calls, followed through the macros they call."""
    checksum = (node.get("checksum") or {}).get("checksum") or digest(node.get("raw_code") or "")
    facets = {"seed" if node["resource_type"] == "seed" else "sql": checksum}
    facets["config"] = digest({field: node.get(field) for field in _YAML_FIELDS})
    called = sorted(_macros_called(node, macros))
    if called:
        facets["macros"] = digest([(name, (macros.get(name) or {}).get("macro_sql")) for name in called])
    return facets


def _macros_called(node: Mapping[str, Any], macros: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = list((node.get("depends_on") or {}).get("macros") or [])
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(((macros.get(name) or {}).get("depends_on") or {}).get("macros") or [])
    return seen


def declared_columns(node: Mapping[str, Any]) -> dict[str, str | None]:
    """The columns a dbt node declares in YAML (or its contract), with their declared type."""
    return {name: (column or {}).get("data_type") for name, column in sorted((node.get("columns") or {}).items())}


def _spec_facet(node: Any, raw_code: str | None) -> str:
    """What a translator or an ``AssetSpec`` sets besides the key, group and deps. dagster-dbt's
    default description quotes the model's SQL, which the ``sql`` facet already covers."""
    description = node.description
    if raw_code and description:
        description = description.replace(textwrap.indent(raw_code, "    "), "<sql>")
    metadata = {
        name: str(getattr(value, "value", value))
        for name, value in (node.metadata or {}).items()
        if not name.startswith(_OWN_METADATA_PREFIXES)
    }
    return digest(
        {
            "description": description,
            "metadata": metadata,
            "tags": dict(node.tags or {}),
            "owners": sorted(node.owners or []),
        }
    )


def _source_digest(function: Any) -> str | None:
    if function is None:
        return None
    try:
        return digest(inspect.getsource(function))
    except (OSError, TypeError):  # made at run time (exec, a lambda in a REPL): nothing to read
        return None
