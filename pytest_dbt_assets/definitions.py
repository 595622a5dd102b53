"""Load the user's Dagster definitions (or build default ``@dbt_assets``) and validate them,
with the reasons they cannot be loaded in words (an import that failed is told by
:mod:`import_failure`). ``relocate.py`` then isolates them.

Dagster is imported inside the functions: the session imports this module when it first loads
definitions, and a graph-free run (``--help``, no dbt project) should not pay for Dagster.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.compat import dagster_dbt as dagster_dbt_compat
from pytest_dbt_assets.components import find_dg_project, isolated_component_loading
from pytest_dbt_assets.errors import DefinitionsError
from pytest_dbt_assets.import_failure import describe_import_failure, display_path, exception_summary
from pytest_dbt_assets.manifest_signature import describe_manifest_difference, manifest_signature
from pytest_dbt_assets.project import DbtAssetsProject
from pytest_dbt_assets.selection import dbt_assets_definitions_of

if TYPE_CHECKING:
    from dagster import Definitions

DEFAULT_DBT_RESOURCE_KEY = "dbt"


def load_definitions(
    spec: str | None,
    rootdir: Path,
    project: DbtAssetsProject,
    manifest_problem: Callable[[Path | None], str | None],
) -> Definitions:
    """The definitions ``spec`` names (``module:attribute``, imported from ``rootdir``), or
    ``@dbt_assets`` built from ``project``'s manifest when it is None, checked to be built from
    the plugin's manifests (``manifest_problem(source_dir)``: why the plugin could not make a
    project's ``target/manifest.json`` its own, None for the main project's folder).

    Raises:
        DefinitionsError: they cannot be imported, or an ``@dbt_assets`` was built from
            another manifest than the plugin's.
    """
    __tracebackhide__ = True
    validate_definitions_setting(spec, project)
    if spec is None:
        return build_default_definitions(project)
    defs = import_definitions(spec, rootdir)
    for each in project.all_projects:
        validate_same_manifest(defs, each, spec, manifest_problem(None if each is project else each.source_dir))
    return defs


def import_definitions(spec: str, search_path: Path) -> Definitions:
    """Import ``package.module:attr`` and coerce it to a ``dagster.Definitions``.

    ``search_path`` (the pytest rootdir) is put on ``sys.path`` for the import only.
    The attribute may be a ``Definitions``, an assets definition, a list of them, or a
    function taking no argument that returns one of those (``@dg.definitions`` included; a
    components project's ``load_from_defs_folder`` is loaded without writing in its tree).

    Raises:
        DefinitionsError: the setting is malformed, the module cannot be imported (its own
            exception is shown with the file and line that raised it), or the attribute is
            missing or of the wrong type.
    """
    __tracebackhide__ = True
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        head, dot, tail = spec.rpartition(".")
        suggestion = f" Did you mean {head + ':' + tail!r}?" if dot and head and tail and not sep else ""
        raise DefinitionsError(
            f"dbt_assets_definitions = {spec!r} is not of the form 'package.module:attribute', "
            f"e.g. 'my_project.definitions:defs'.{suggestion}"
        )
    # dagster-dbt caches manifests by path: a re-import in this process (pytester, IDE
    # re-runs) must read the manifest the plugin just wrote, not a stale one.
    dagster_dbt_compat.forget_dagster_dbt_manifests()
    # A components project's package is importable from its src/ folder, as its venv has it.
    dg_project = find_dg_project(search_path)
    folders = [str(search_path)] + ([str(dg_project.code_dir)] if dg_project is not None else [])
    added = [folder for folder in dict.fromkeys(folders) if folder not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything
        raise DefinitionsError(describe_import_failure(exc, module_name, spec, search_path)) from None
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)
    value: Any = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            found = _definitions_in(module)
            hint = f" It defines {', '.join(repr(module_name + ':' + name) for name in found)}." if found else ""
            raise DefinitionsError(
                f"{module_name!r} ({display_path(getattr(module, '__file__', None), search_path)}) "
                f"has no attribute {attr_path!r} (dbt_assets_definitions = {spec!r}).{hint} "
                "Point the setting at your `dagster.Definitions` object."
            )
        value = getattr(value, part)
    return coerce_definitions(value, spec)


def coerce_definitions(value: Any, spec: str) -> Definitions:
    """Accept a Definitions, an assets definition, a list of them, or a factory of those
    (a function, or what ``@dg.definitions`` makes of one)."""
    __tracebackhide__ = True
    from dagster import AssetsDefinition, AssetSpec, Definitions

    if isinstance(value, Definitions):
        return value
    if isinstance(value, (AssetsDefinition, AssetSpec)):
        return Definitions(assets=[value])
    # type() and not isinstance(): what ``@dg.definitions`` returns is a Dagster record, a tuple.
    if (
        type(value) in (list, tuple)
        and value
        and all(isinstance(item, (AssetsDefinition, AssetSpec)) for item in value)
    ):
        return Definitions(assets=list(value))
    if callable(value) and not isinstance(value, type):
        try:
            # Called as Dagster calls a code location's target (``@dg.definitions`` included).
            with isolated_component_loading():
                produced = value()
        except Exception as exc:  # noqa: BLE001 - the user's factory may raise anything
            raise DefinitionsError(
                f"Calling {spec!r} to get the Dagster definitions failed:\n{exception_summary(exc)}"
            ) from None
        return coerce_definitions(produced, spec)
    raise DefinitionsError(
        f"dbt_assets_definitions = {spec!r} is a {type(value).__module__}.{type(value).__qualname__}, "
        "not a dagster.Definitions. Point it at your Definitions object (e.g. "
        "'my_project.definitions:defs'), an assets definition, or a list of them."
    )


def build_default_definitions(project: DbtAssetsProject) -> Definitions:
    """``@dbt_assets`` over the whole manifest with dagster-dbt's default translator."""
    from dagster import AssetExecutionContext, Definitions
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    dbt_project = DbtProject(project_dir=project.project_dir, profiles_dir=project.profiles_dir)

    def _dbt_assets(context, dbt):  # type: ignore[no-untyped-def]
        yield from dbt.cli(["build"], context=context).stream()

    # Real annotations (not strings): Dagster reads them to find the context and the resource.
    _dbt_assets.__annotations__ = {"context": AssetExecutionContext, "dbt": DbtCliResource}
    assets_def = dbt_assets(manifest=project.manifest, project=dbt_project, name=f"{project.project_name}_dbt_assets")(
        _dbt_assets
    )

    return Definitions(
        assets=[assets_def],
        resources={DEFAULT_DBT_RESOURCE_KEY: DbtCliResource(project_dir=str(project.project_dir))},
    )


def validate_definitions(defs: Definitions) -> None:
    """Resolve the asset graph once, so Dagster's objections surface here, readably.

    Dagster only checks definitions (duplicate keys, missing resources, ...) when it first
    resolves them; the result is cached on ``defs``, so this costs nothing later.

    Raises:
        DefinitionsError: naming each duplicated asset key and what produces it, or with
            Dagster's own message for any other problem.
    """
    __tracebackhide__ = True
    from dagster import DagsterError

    try:
        defs.resolve_asset_graph()
    except DagsterError as exc:
        duplicates = duplicate_asset_keys(defs)
        if duplicates:
            lines = ["Two or more assets in your Dagster definitions have the same asset key:"]
            for key, producers in sorted(duplicates.items()):
                lines.append(f"  {key}: produced by " + " and by ".join(producers))
            lines.append(
                "Give each asset a unique key: check your DagsterDbtTranslator.get_asset_key "
                "(or the key=/key_prefix= of your Python assets)."
            )
            raise DefinitionsError("\n".join(lines)) from None
        raise DefinitionsError(
            "Dagster rejected your definitions:\n  "
            + str(exc).strip().replace("\n", "\n  ")
            + "\nFix them in your Dagster code; `dagster definitions validate` reports the same problem."
        ) from None


def duplicate_asset_keys(defs: Definitions) -> dict[str, list[str]]:
    """Asset key (user string) -> descriptions of the assets definitions that produce it,
    for every key produced more than once."""
    from dagster import AssetsDefinition

    unique_id_key = dagster_dbt_compat.dbt_unique_id_metadata_key()
    producers: dict[str, list[str]] = {}
    for item in defs.assets or []:
        if not isinstance(item, AssetsDefinition) or not item.has_keys:
            continue
        for spec in item.specs:
            unique_id = spec.metadata.get(unique_id_key)
            if unique_id is not None:
                what = f"dbt {unique_id.split('.')[0]} {unique_id.split('.')[-1]} in @dbt_assets {item.node_def.name!r}"
            else:
                what = _describe_python_asset(item)
            producers.setdefault(spec.key.to_user_string(), []).append(what)
    return {key: found for key, found in producers.items() if len(found) > 1}


def _describe_python_asset(assets_def: Any) -> str:
    """``asset 'orders_export' (path/to/file.py:12)``: the function the user wrote, when known."""
    function: Any = getattr(getattr(getattr(assets_def, "op", None), "compute_fn", None), "decorated_fn", None)
    code = getattr(function, "__code__", None)
    if code is None:
        return f"asset {assets_def.node_def.name!r}"
    return f"asset {code.co_name!r} ({code.co_filename}:{code.co_firstlineno})"


def validate_definitions_setting(spec: str | None, project: DbtAssetsProject) -> None:
    """Raise :class:`DefinitionsError` when several dbt projects are configured and no
    definitions: the default ``@dbt_assets`` are built for one dbt project only."""
    __tracebackhide__ = True
    if spec is None and project.others:
        raise DefinitionsError(
            f"{len(project.all_projects)} dbt projects are configured "
            f"({', '.join(str(each.source_dir) for each in project.all_projects)}) and no Dagster "
            "definitions: the plugin builds default @dbt_assets for one dbt project only. Set "
            "dbt_assets_definitions in [tool.pytest.ini_options] to the `package.module:attr` of the "
            "Definitions holding their @dbt_assets."
        )


def validate_same_manifest(
    defs: Definitions, project: DbtAssetsProject, spec: str, user_manifest_problem: str | None = None
) -> None:
    """Fail when an ``@dbt_assets`` of ``project``'s dbt project was built from another
    manifest than the plugin's: the user's module was imported (by another plugin, a ``-p``
    option, an earlier import) before the plugin made ``target/manifest.json`` its own.

    Raises:
        DefinitionsError: naming the assets definition, how the manifests differ, and the fix.
    """
    __tracebackhide__ = True
    manifest_key = dagster_dbt_compat.dbt_manifest_metadata_key()

    ours = manifest_signature(project.manifest)
    for assets_def in dbt_assets_definitions_of(defs):
        wrapper = next(
            metadata[manifest_key]
            for metadata in assets_def.metadata_by_key.values()
            if manifest_key in (metadata or {})
        )
        theirs = getattr(wrapper, "manifest", wrapper)
        if (theirs.get("metadata") or {}).get("project_name") != project.project_name:
            continue  # another dbt project's assets
        if manifest_signature(theirs) == ours:
            continue
        what = (
            f"@dbt_assets {assets_def.node_def.name!r} (dbt_assets_definitions = {spec!r}) was built from "
            f"another manifest than the plugin's parse of {project.source_dir} "
            f"({describe_manifest_difference(theirs, project.manifest)})."
        )
        if user_manifest_problem is not None:
            raise DefinitionsError(f"{what}\n{user_manifest_problem}")
        raise DefinitionsError(
            f"{what}\nYour Dagster module was imported before the plugin could make "
            f"{project.source_dir / 'target' / 'manifest.json'} its own (by another plugin, a `-p` "
            "option, or a module imported before pytest loaded your conftest.py), so it read the "
            "manifest that was there: stale or from another profile. The file is the plugin's now, so "
            "the next run reads it; to fix it for good, import your Dagster package only from "
            "conftest.py, test modules or fixtures, never from a plugin or at start-up. (If your "
            "DbtProject reads its manifest from another folder, e.g. a `packaged_project_dir` copy, "
            "delete that copy before testing.)"
        )


def _definitions_in(module: Any) -> list[str]:
    from dagster import Definitions

    return sorted(name for name, value in vars(module).items() if isinstance(value, Definitions))
