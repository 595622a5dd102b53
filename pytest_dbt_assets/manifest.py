"""Parse the temporary project once and hand the manifest to Dagster as a dict."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_dbt_assets.cache import (
    PLACEHOLDER,
    cache_folder,
    cached_manifest_text,
    fingerprint,
    manifest_entry,
    newest_partial_parse,
    prune,
    write_atomically,
    write_partial_parse,
)
from pytest_dbt_assets.compat import dbt as dbt_compat
from pytest_dbt_assets.dbt.partial_parse import RefusalNotes
from pytest_dbt_assets.dbt.runner import describe_dbt_failure, run_dbt
from pytest_dbt_assets.errors import DbtParseError
from pytest_dbt_assets.manifest_signature import manifest_signature, signature_of
from pytest_dbt_assets.owner import make_temp_folder
from pytest_dbt_assets.project import DbtAssetsProject, build_project, read_project_yml
from pytest_dbt_assets.warehouse.base import Backend

USER_MANIFEST = Path("target", "manifest.json")
# Under the manifest cache: dbt's partial-parse file of the parse that made each entry, by its
# key, from which the dbt worker starts its own parse instead of parsing again.
EARLY_PARSE_DIR = "early_parse"
# dbt_project.yml keys naming the folders dbt reads, with dbt's defaults.
_DBT_PATH_KEYS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "macro-paths": ["macros"],
    "snapshot-paths": ["snapshots"],
    "function-paths": ["functions"],
    "docs-paths": [],
    "asset-paths": [],
    "packages-install-path": "dbt_packages",
}


@dataclass(frozen=True)
class PreparedManifest:
    """The plugin's manifest of the user's dbt project, made before any user module is imported.

    Attributes:
        source_dir: the user's dbt project.
        text: the manifest JSON, with :data:`cache.PLACEHOLDER` where the project folder goes.
        cache_problem: why the manifest cache could not be used (a read-only tree), or None.
        user_manifest_problem: why ``<dbt project>/target/manifest.json`` is not the plugin's
            (missing or out of date, and it cannot be written), or None.
        copy: the temporary copy the manifest was made in, when the caller asked to keep it.
        early_parse: where dbt's partial-parse file of the parse that made this manifest is
            cached (the folder and its key for :func:`cache.read_partial_parse`), or None.
            The dbt worker starts from it, so it does not parse the project again.
    """

    source_dir: Path
    text: str
    cache_problem: str | None = None
    user_manifest_problem: str | None = None
    copy: DbtAssetsProject | None = field(default=None, compare=False, repr=False)
    early_parse: tuple[Path, str] | None = None

    @property
    def user_manifest(self) -> Path:
        return self.source_dir / USER_MANIFEST

    @property
    def user_text(self) -> str:
        """The manifest as the user's tree holds it: paths in the user's project."""
        return self.text.replace(PLACEHOLDER, str(self.source_dir))

    def install(self, project: DbtAssetsProject) -> dict[str, Any]:
        """Give ``project`` (a copy of ``source_dir``) this manifest: no dbt parse."""
        text = self.text.replace(PLACEHOLDER, str(project.project_dir))
        project.target_dir.mkdir(parents=True, exist_ok=True)
        (project.target_dir / "manifest.json").write_text(text, encoding="utf-8")
        project.manifest = json.loads(text)
        return project.manifest


def prepare_manifest(
    source_dir: Path, workdir: Path | None = None, backend: Backend | None = None, cache_root: Path | None = None
) -> PreparedManifest:
    """Parse ``source_dir`` with the plugin's profile for ``backend`` (DuckDB's when None; or take the cached manifest) and
    make ``<source_dir>/target/manifest.json`` that manifest, replacing a missing or stale one
    atomically, so the user's Dagster modules read it when conftest.py imports them.

    The parse runs in a temporary copy that is removed afterwards; given a ``workdir`` (an
    empty folder the caller owns), the copy is made there and kept as ``copy``, exactly as
    :func:`project.build_project` makes it (what the parse wrote is removed), so that the
    session's project need not be copied again. A tree that cannot be written does not stop
    it: the cache is skipped and the reason kept in ``cache_problem``; a user manifest that
    cannot be replaced is described in ``user_manifest_problem``.

    Raises:
        ProjectNotFoundError: ``source_dir`` holds no dbt project.
        DbtParseError: dbt could not parse the project (its own message).
    """
    source_dir = source_dir.resolve()
    kept: DbtAssetsProject | None = None
    if workdir is None:
        workdir = make_temp_folder()
        keep = False
    else:
        keep = True
    try:
        project = build_project(source_dir, workdir, backend)
        copied = {child.name for child in project.project_dir.iterdir()}
        key = fingerprint(
            project.project_dir,
            profile=project.profile_identity,
            target=project.target_name,
            skip=python_projects_inside(source_dir),
        )

        cache_dir = cache_folder(source_dir, cache_root)
        early_parse = (cache_dir / EARLY_PARSE_DIR, key)

        def parse() -> str:
            return _parse_from_an_earlier_parse(project, *early_parse)

        text, _, cache_problem = manifest_entry(cache_dir, key, project.project_dir, parse)
        # Kept only when the parse wrote nothing but folders of its own (target/, logs/): a
        # project whose copy holds one of them already (a folder named `target` that is not
        # its target-path) keeps dbt's partial-parse files there, so it is copied afresh.
        if keep and not copied & {project.target_dir.name, "logs"}:
            for child in project.project_dir.iterdir():
                if child.name not in copied:
                    shutil.rmtree(child)
            kept = project
    finally:
        if kept is None:
            shutil.rmtree(workdir, ignore_errors=True)
    prepared = PreparedManifest(
        source_dir=source_dir,
        text=text,
        cache_problem=cache_problem,
        copy=kept,
        early_parse=early_parse if cache_problem is None else None,
    )
    return replace(prepared, user_manifest_problem=_replace_user_manifest(prepared.user_manifest, prepared.user_text))


def _parse_from_an_earlier_parse(project: DbtAssetsProject, cache_dir: Path, key: str) -> str:
    """Parse the temporary project and return the manifest JSON text, starting from the newest
    partial-parse file an earlier start-up parse of the same dbt project (same profile, target
    and ``dbt_project.yml``: dbt parses every file again when that changed) cached: dbt checks
    it as any partial-parse file (its version, vars, env vars, each dbt_project.yml, each
    file's checksum) and parses again only the files that changed, or all of them when it
    refuses the file. What later sessions' worker and start-up parses start from is cached
    under ``key`` (see :func:`_keep_partial_parse`)."""
    config = hashlib.sha256((project.project_dir / "dbt_project.yml").read_bytes()).hexdigest()
    family = hashlib.sha256(f"{project.profile_identity}\n{project.target_name}\n{config}".encode()).hexdigest()
    seed = newest_partial_parse(cache_dir, family)
    if seed is None:
        parse_project(project)
        _keep_partial_parse(project, cache_dir, key, family)
        return (project.target_dir / "manifest.json").read_text(encoding="utf-8")
    made_in, content = seed
    project.target_dir.mkdir(parents=True, exist_ok=True)
    (project.target_dir / dbt_compat.partial_parse_file_name()).write_bytes(content)
    refusals = RefusalNotes()
    # The profile differs from the earlier one by its temporary folder alone (the family
    # covers the rest), as for the worker's parse.
    with dbt_compat.partial_parse_ignoring_profile_hash():
        parse_project(project, on_event=refusals)
    text = (project.target_dir / "manifest.json").read_text(encoding="utf-8")
    if refusals.reasons:  # a full parse: dbt's new file holds this folder alone
        _keep_partial_parse(project, cache_dir, key, family)
        return text
    # dbt kept the folder the earlier file was made in for the seeds it did not parse again
    # (their absolute ``root_path``): point the manifest at this folder, and cache the earlier
    # file itself, whose every seed is in ``made_in``, for the worker to start from likewise.
    _cache_partial_parse(cache_dir, key, made_in, content, family)
    return re.sub(re.escape(made_in) + r"(?=[/\\\"])", lambda _: str(project.project_dir), text)


def _keep_partial_parse(project: DbtAssetsProject, cache_dir: Path, key: str, family: str) -> None:
    """Cache the partial-parse file dbt wrote beside the manifest it just parsed (as the
    worker's cache does, with the folder it was made in), so that the dbt worker starts from
    it instead of parsing the same files again. A cache that cannot be written costs the
    worker a parse, no more."""
    try:
        content = (project.target_dir / dbt_compat.partial_parse_file_name()).read_bytes()
    except OSError:
        return
    _cache_partial_parse(cache_dir, key, str(project.project_dir), content, family)


def _cache_partial_parse(cache_dir: Path, key: str, made_in: str, content: bytes, family: str) -> None:
    try:
        write_partial_parse(cache_dir, key, made_in, content, family)
        prune(cache_dir)
    except OSError:
        pass


def python_projects_inside(source_dir: Path) -> set[str]:
    """Top-level folders of the dbt project that hold a Python project (where `dagster-dbt
    project scaffold` puts the Dagster project) and that dbt_project.yml does not name: dbt
    never reads them, so editing a test or an asset there keeps the cached manifest."""
    project_yml = read_project_yml(source_dir)
    named: set[str] = set()
    for key, default in _DBT_PATH_KEYS.items():
        value = project_yml.get(key, default)
        for folder in [value] if isinstance(value, str) else value or []:
            parts = Path(str(folder)).parts
            if parts:
                named.add(parts[0])
    return {
        child.name
        for child in source_dir.iterdir()
        if child.is_dir()
        and child.name not in named
        and any((child / marker).is_file() for marker in ("pyproject.toml", "setup.py", "setup.cfg"))
    }


def _replace_user_manifest(path: Path, text: str) -> str | None:
    """Write ``text`` to ``path`` unless it holds it already; when it cannot be written and
    holds another manifest (or none), say so and how to fix it. (Only then are the two
    compared by :func:`manifest_signature`: a warm session does not parse the JSON for it.)"""
    content = text.encode()
    try:
        current: bytes | None = path.read_bytes()
    except OSError:
        current = None
    if current == content:
        return None
    try:
        path.parent.mkdir(exist_ok=True)
        write_atomically(path, content, prefix=".manifest-")
        return None
    except OSError as error:
        reason = error.strerror or str(error)
    if current is not None and signature_of(current) == manifest_signature(json.loads(text)):
        return None  # another parse of the same project and profile: the same definitions
    if current is None:
        state, effect = "does not exist", "they cannot be imported without it"
    else:
        state = "is out of date (another parse, profile or version of the project)"
        effect = "they would be built from that old manifest"
    return (
        f"{path} {state}, and the plugin cannot replace it: {path.parent} cannot be written ({reason}). "
        f"Your Dagster modules read that file at import by its path, so {effect} (a `DbtProject` of the "
        "project needs none of this: the plugin points it at its own manifest). "
        f"Use `DbtProject(...).manifest_path`, or make {path.parent} writable (e.g. mount a writable volume on it in a read-only container), "
        "or run pytest once on a writable checkout before the tree becomes read-only: the plugin then "
        "writes its manifest there and later sessions only read it."
    )


def load_manifest(project: DbtAssetsProject, cache_dir: Path | None) -> dict[str, Any]:
    """The project's manifest: from the cache in ``cache_dir`` when nothing that shapes the
    parse changed (no dbt parse at all), else from :func:`parse_project`, then cached."""
    if cache_dir is None:
        return parse_project(project)
    key = fingerprint(project.project_dir, profile=project.profile_identity, target=project.target_name)

    def parse() -> str:
        parse_project(project)
        return (project.target_dir / "manifest.json").read_text(encoding="utf-8")

    text, from_cache = cached_manifest_text(cache_dir, key, project.project_dir, parse)
    if from_cache:
        project.target_dir.mkdir(parents=True, exist_ok=True)
        (project.target_dir / "manifest.json").write_text(text, encoding="utf-8")
        project.manifest = json.loads(text)
    return project.manifest


def parse_project(project: DbtAssetsProject, on_event: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Run ``dbt parse`` on the temporary project and return the manifest as a dict
    (``on_event``: given each event dbt fires).

    Raises:
        DbtParseError: with dbt's own message (it names the file) for YAML errors, unknown
            refs, Jinja errors, missing packages; and for ref cycles, the cycle itself.
    """
    result, errors = run_dbt(project, ["parse"], on_event=on_event)
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
