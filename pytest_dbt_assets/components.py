"""Dagster components projects (the ``dg`` layout): find their definitions and dbt projects
from ``[tool.dg.project]``, load them without touching the user's tree, and run each
``DbtProjectComponent``'s dbt through a resource the plugin can isolate.

A components project keeps ``[tool.dg.project] root_module`` in ``pyproject.toml`` or
``dg.toml``; its definitions are ``<root_module>.definitions`` (an ``@dg.definitions``
function calling ``load_from_defs_folder``), its defs folder ``<root_module>.defs``, and each
dbt project is named by a ``defs.yaml`` of ``type: dagster_dbt.DbtProjectComponent``.
"""

from __future__ import annotations

import ast
import os
import re
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_dbt_assets.compat.dagster import local_defs_state_in
from pytest_dbt_assets.compat.dagster_dbt import dbt_assets_manifest
from pytest_dbt_assets.compat.dagster_dbt_components import component_resolution_context, dbt_component_of
from pytest_dbt_assets.dbt_resource import relocated_cli_resource

# Dagster and dagster-dbt are imported inside the functions that load or rebuild definitions:
# finding a components project (find_dg_project) runs at start-up, where they would cost seconds.
if TYPE_CHECKING:
    from dagster import AssetsDefinition, Definitions

    from pytest_dbt_assets.project import DbtAssetsProject

DBT_COMPONENT_TYPES = ("dagster_dbt.DbtProjectComponent",)
# Resource key under which each component's rebuilt asset gets its dbt (see isolate_components).
COMPONENT_RESOURCE_PREFIX = "dbt_assets_component_dbt_"
# Set by `dg dev` / `dagster dev`: components then refresh their state, i.e. run dbt with the
# user's own profile in the user's tree. Never while loading definitions under test.
DAGSTER_DEV_ENV = "DAGSTER_IS_DEV_CLI"
_PROJECT_ROOT_TEMPLATE = re.compile(r"\{\{\s*(?:context\.)?project_root\s*\}\}")


@dataclass(frozen=True)
class DgProject:
    """A Dagster components project found from its ``[tool.dg.project]`` table.

    Attributes:
        root: the folder of the config file (Dagster's project root).
        config_file: the ``pyproject.toml`` or ``dg.toml`` holding ``[tool.dg.project]``.
        definitions: ``package.module:attr`` of its definitions, for ``dbt_assets_definitions``.
        code_dir: the folder to import the root module from (``src/`` in the scaffolded layout).
        dbt_project_dirs: the dbt projects its ``DbtProjectComponent``s name, sorted.
    """

    root: Path
    config_file: Path
    definitions: str | None
    code_dir: Path
    dbt_project_dirs: tuple[Path, ...]


def find_dg_project(folder: Path) -> DgProject | None:
    """The components project whose ``pyproject.toml`` / ``dg.toml`` is in ``folder``, or None.

    Pure: reads files, imports nothing (it runs before any conftest.py, so before the user's
    modules may be imported).
    """
    table, config_file = _dg_project_table(folder)
    if table is None or config_file is None:
        return None
    root_module = table.get("root_module")
    if not isinstance(root_module, str) or not root_module:
        return None
    code_dir = folder / "src" if (folder / "src" / _module_path(root_module)).exists() else folder
    target_module = str(table.get("code_location_target_module") or f"{root_module}.definitions")
    defs_module = str(table.get("defs_module") or f"{root_module}.defs")
    return DgProject(
        root=folder,
        config_file=config_file,
        definitions=_definitions_spec(code_dir, target_module),
        code_dir=code_dir,
        dbt_project_dirs=tuple(sorted(set(_dbt_component_projects(folder, code_dir / _module_path(defs_module))))),
    )


def _dg_project_table(folder: Path) -> tuple[dict[str, Any] | None, Path | None]:
    for name, keys in (("dg.toml", ("project",)), ("pyproject.toml", ("tool", "dg", "project"))):
        path = folder / name
        if not path.is_file():
            continue
        try:
            table: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for key in keys:
            table = table.get(key) if isinstance(table, dict) else None
        if isinstance(table, dict):
            return table, path
    return None, None


def _module_path(module: str) -> Path:
    return Path(*module.split("."))


def _definitions_spec(code_dir: Path, module: str) -> str | None:
    """``module:attr`` of the definitions in ``module``: the function decorated with
    ``@definitions`` (``dg.definitions``), else a module-level ``defs``; None if not found."""
    path = code_dir / _module_path(module)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(_names_definitions(d) for d in node.decorator_list):
            return f"{module}:{node.name}"
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == "defs" for target in targets):
            return f"{module}:defs"
    return None


def _names_definitions(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Name) and decorator.id == "definitions") or (
        isinstance(decorator, ast.Attribute) and decorator.attr == "definitions"
    )


def _dbt_component_projects(root: Path, defs_dir: Path) -> list[Path]:
    """dbt projects named by ``DbtProjectComponent`` ``defs.yaml`` files under ``defs_dir``:
    ``project:`` as a path or ``{project_dir: ...}``, relative to the ``defs.yaml`` or written
    with ``{{ project_root }}``. Other templates cannot be resolved without loading the
    project; those are left to ``dbt_assets_project_dir``."""
    found = []
    for defs_yaml in sorted(defs_dir.rglob("defs.yaml")) if defs_dir.is_dir() else []:
        try:
            documents = list(yaml.safe_load_all(defs_yaml.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError):
            continue
        for document in documents:
            if not isinstance(document, dict) or document.get("type") not in DBT_COMPONENT_TYPES:
                continue
            project = (document.get("attributes") or {}).get("project")
            if isinstance(project, dict):
                project = project.get("project_dir")
            if not isinstance(project, str):
                continue
            written = _PROJECT_ROOT_TEMPLATE.sub(str(root).replace("\\", "/"), project)
            if "{{" in written:
                continue
            path = (defs_yaml.parent / written).resolve()
            if (path / "dbt_project.yml").is_file():
                found.append(path)
    return found


@contextmanager
def isolated_component_loading() -> Iterator[None]:
    """Load a components project as a deployed code location does, and write nothing in the
    user's tree: no state refresh (which runs dbt with the user's profile), and the local
    defs state folder Dagster creates while loading kept in a temporary folder."""
    saved = os.environ.pop(DAGSTER_DEV_ENV, None)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="dbt_assets_defs_state_") as state_dir,
            local_defs_state_in(Path(state_dir)),
        ):
            yield
    finally:
        if saved is not None:
            os.environ[DAGSTER_DEV_ENV] = saved


def isolate_components(defs: Definitions, project: DbtAssetsProject) -> Definitions:
    """Rebuild each ``DbtProjectComponent`` asset so its dbt comes from a resource.

    The component creates ``DbtCliResource(project)`` inside its asset, out of reach of any
    resource override. The rebuilt asset has the same specs, checks, op name, tags and
    backfill policy, and runs the component's own ``execute(context, dbt)`` (so subclasses,
    ``cli_args`` and ``include_metadata`` behave as in production) with the resource under
    ``dbt_assets_component_dbt_<op name>``, the isolated ``DbtCliResource`` of ``project``
    (:mod:`pytest_dbt_assets.dbt_resource`). With several dbt
    projects, each component's resource is the temporary copy of its own dbt project
    (matched by the name in its manifest).
    """
    from dagster import AssetsDefinition
    from dagster_dbt import DbtCliResource
    from dagster_shared.record import replace

    assets: list[Any] = []
    resources: dict[str, Any] = {}
    for item in defs.assets or []:
        found = dbt_component_of(item) if isinstance(item, AssetsDefinition) else None
        if found is None or not isinstance(item, AssetsDefinition):
            assets.append(item)
            continue
        component, resolution_context = found
        key = COMPONENT_RESOURCE_PREFIX + re.sub(r"\W", "_", item.op.name)
        assets.append(_component_assets(item, component, resolution_context, key))
        own = project.counterpart(name=(dbt_assets_manifest(item)[0].get("metadata") or {}).get("project_name"))
        resources[key] = relocated_cli_resource(DbtCliResource(project_dir=str(own.project_dir)), own)
    if not resources:
        return defs
    isolated: Definitions = replace(defs, assets=assets, resources={**(defs.resources or {}), **resources})
    return isolated


def _component_assets(
    assets_def: AssetsDefinition, component: Any, resolution_context: Any, resource_key: str
) -> AssetsDefinition:
    """``assets_def`` with the same specs, running ``component.execute`` with the resource."""
    from dagster import AssetExecutionContext, multi_asset

    config_cls = component.config_cls

    def _dbt_component(context):  # type: ignore[no-untyped-def]
        with component_resolution_context(resolution_context):
            yield from component.execute(context=context, dbt=getattr(context.resources, resource_key))

    # A real annotation (not a string): Dagster reads it to find the context.
    _dbt_component.__annotations__ = {"context": AssetExecutionContext}
    built: AssetsDefinition = multi_asset(
        specs=list(assets_def.specs),
        check_specs=list(assets_def.check_specs),
        can_subset=True,
        name=assets_def.op.name,
        op_tags=assets_def.op.tags,
        backfill_policy=assets_def.backfill_policy,
        pool=assets_def.op.pool,
        config_schema=config_cls.to_fields_dict() if config_cls else None,
        allow_arbitrary_check_specs=component.translator.settings.enable_source_tests_as_checks,
        required_resource_keys={resource_key},
    )(_dbt_component)
    return built
