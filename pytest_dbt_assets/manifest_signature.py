"""What a manifest's definitions are built from, as a hash (:func:`manifest_signature`), and
how two manifests differ in words: the check that a user's ``@dbt_assets`` and the user's
``target/manifest.json`` come from the plugin's parse, not from a stale or foreign one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pytest_dbt_assets.words import listed


def signature_of(content: bytes) -> str | None:
    try:
        return manifest_signature(json.loads(content))
    except (ValueError, TypeError, AttributeError):
        return None


def manifest_signature(manifest: Any) -> str:
    """A hash of what the definitions are built from: every node and source with its file
    checksum, dependencies and relation (database, schema, name), and the project and
    adapter. Paths, timestamps and invocation ids do not count."""
    metadata = manifest.get("metadata") or {}
    parts: dict[str, Any] = {
        "project": metadata.get("project_name"),
        "adapter": metadata.get("adapter_type"),
    }
    for section in ("nodes", "sources"):
        for unique_id, node in sorted((manifest.get(section) or {}).items()):
            parts[unique_id] = _node_identity(node)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _node_identity(node: Any) -> list[Any]:
    return [
        (node.get("checksum") or {}).get("checksum"),
        sorted((node.get("depends_on") or {}).get("nodes") or []),
        node.get("database"),
        node.get("schema"),
        node.get("relation_name"),
    ]


def describe_manifest_difference(theirs: Any, ours: Any) -> str:
    """A few words on how ``theirs`` differs from ``ours``: models only in one of them, and
    nodes whose code, dependencies or relation differ."""
    their_nodes = {**(theirs.get("nodes") or {}), **(theirs.get("sources") or {})}
    our_nodes = {**(ours.get("nodes") or {}), **(ours.get("sources") or {})}
    found = []
    only_theirs = sorted(set(their_nodes) - set(our_nodes))
    only_ours = sorted(set(our_nodes) - set(their_nodes))
    changed = sorted(
        uid
        for uid in set(their_nodes) & set(our_nodes)
        if _node_identity(their_nodes[uid]) != _node_identity(our_nodes[uid])
    )
    for label, ids in (
        ("only in that manifest", only_theirs),
        ("missing from it", only_ours),
        ("different code, parents or relation", changed),
    ):
        if ids:
            found.append(f"{label}: {listed(ids)}")
    return "; ".join(found) or "same nodes, other project or adapter"
