"""Parse the temporary project once and hand the manifest to Dagster as a dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_dbt_assets.cache import cached_manifest_text, fingerprint, write_atomically
from pytest_dbt_assets.errors import DbtParseError
from pytest_dbt_assets.project import DbtAssetsProject, describe_dbt_failure, run_dbt


def load_manifest(project: DbtAssetsProject, cache_dir: Path | None) -> dict[str, Any]:
    """The project's manifest: from the cache in ``cache_dir`` when nothing that shapes the
    parse changed (no dbt parse at all), else from :func:`parse_project`, then cached."""
    if cache_dir is None:
        return parse_project(project)
    key = fingerprint(project.project_dir, profile=project.profile_name, target=project.target_name)

    def parse() -> str:
        parse_project(project)
        return (project.target_dir / "manifest.json").read_text(encoding="utf-8")

    text, from_cache = cached_manifest_text(cache_dir, key, project.project_dir, parse)
    if from_cache:
        project.target_dir.mkdir(parents=True, exist_ok=True)
        (project.target_dir / "manifest.json").write_text(text, encoding="utf-8")
        project.manifest = json.loads(text)
    return project.manifest


def parse_project(project: DbtAssetsProject) -> dict[str, Any]:
    """Run ``dbt parse`` on the temporary project and return the manifest as a dict.

    Raises:
        DbtParseError: with dbt's own message (it names the file) for YAML errors, unknown
            refs, Jinja errors, missing packages; and for ref cycles, the cycle itself.
    """
    result, errors = run_dbt(project, ["parse"])
    if not result.success:
        message = describe_dbt_failure("`dbt parse`", project, result, errors)
        has_packages = any((project.project_dir / name).exists() for name in ("packages.yml", "dependencies.yml"))
        if has_packages and "dbt deps" in message:
            message += (
                "\nThe plugin never runs `dbt deps` (no network during tests): run it once in "
                "your project and keep dbt_packages/ in place; the plugin copies it."
            )
        raise DbtParseError(message)
    manifest = json.loads((project.target_dir / "manifest.json").read_text(encoding="utf-8"))
    validate_acyclic(manifest)
    project.manifest = manifest
    return manifest


def validate_acyclic(manifest: dict[str, Any]) -> None:
    """Raise :class:`DbtParseError` naming the cycle when refs form one."""
    parents: dict[str, list[str]] = manifest.get("parent_map") or {}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    for start in sorted(parents):
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            children = sorted(parents.get(node, []))
            if index < len(children):
                stack.append((node, index + 1))
                child = children[index]
                if state.get(child) == 1:
                    cycle = [*path[path.index(child) :], child]
                    files = _files(manifest, cycle)
                    raise DbtParseError(
                        "dbt found a ref cycle: " + " -> ".join(reversed(cycle)) + f" ({files}). "
                        "Remove one of these refs so the models form a DAG."
                    )
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()


def _files(manifest: dict[str, Any], unique_ids: list[str]) -> str:
    nodes = manifest.get("nodes", {})
    return ", ".join(sorted({nodes[uid]["original_file_path"] for uid in unique_ids if uid in nodes}))


def write_user_manifest(project: DbtAssetsProject) -> Path:
    """Put the parsed manifest at ``<user project>/target/manifest.json``.

    A user's Dagster module reads it at import time (``DbtProject.manifest_path``), and
    ``prepare_if_dev()`` does nothing under pytest. This is the only write the plugin makes
    in the user's tree; the file is replaced atomically and only when its content changes.
    """
    path = project.source_dir / "target" / "manifest.json"
    content = (project.target_dir / "manifest.json").read_bytes()
    if path.exists() and path.read_bytes() == content:
        return path
    path.parent.mkdir(exist_ok=True)
    write_atomically(path, content, prefix=".manifest-")
    return path
