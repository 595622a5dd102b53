"""Load the user's Dagster definitions (or build default ``@dbt_assets``) and point every
piece of dbt in them at the temporary project and its DuckDB profile."""

from __future__ import annotations

import functools
import importlib
import json
import shutil
import sys
import traceback
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_dbt_assets.errors import DefinitionsError
from pytest_dbt_assets.project import DbtAssetsProject

if TYPE_CHECKING:
    from dagster import AssetsDefinition, Definitions

DEFAULT_DBT_RESOURCE_KEY = "dbt"


def import_definitions(spec: str, search_path: Path) -> Definitions:
    """Import ``package.module:attr`` and coerce it to a ``dagster.Definitions``.

    ``search_path`` (the pytest rootdir) is put on ``sys.path`` for the import only.
    The attribute may be a ``Definitions``, an assets definition, a list of them, or a
    function taking no argument that returns one of those.
    """
    __tracebackhide__ = True
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise DefinitionsError(
            f"dbt_assets_definitions = {spec!r} is not of the form 'package.module:attribute', "
            "e.g. 'my_project.definitions:defs'."
        )
    from dagster_dbt.dbt_manifest import read_manifest_path

    # dagster-dbt caches manifests by path: a re-import in this process (pytester, IDE
    # re-runs) must read the manifest the plugin just wrote, not a stale one.
    read_manifest_path.cache_clear()
    added = str(search_path) not in sys.path
    if added:
        sys.path.insert(0, str(search_path))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise DefinitionsError(
            f"Could not import {module_name!r} (dbt_assets_definitions = {spec!r}):\n"
            f"{_exception_summary(exc)}\n"
            "Check the module path, and that it is importable from the rootdir "
            f"({search_path}); add `pythonpath = [\".\"]` to [tool.pytest.ini_options] if "
            "your package lives there."
        ) from None
    finally:
        if added and str(search_path) in sys.path:
            sys.path.remove(str(search_path))
    value: Any = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            raise DefinitionsError(
                f"{module_name!r} has no attribute {attr_path!r} (dbt_assets_definitions = "
                f"{spec!r}). Point the setting at your `dagster.Definitions` object."
            )
        value = getattr(value, part)
    return coerce_definitions(value, spec)


def coerce_definitions(value: Any, spec: str) -> Definitions:
    """Accept a Definitions, an assets definition, a list of them, or a factory of those."""
    __tracebackhide__ = True
    from dagster import AssetsDefinition, AssetSpec, Definitions

    if isinstance(value, Definitions):
        return value
    if isinstance(value, (AssetsDefinition, AssetSpec)):
        return Definitions(assets=[value])
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(item, (AssetsDefinition, AssetSpec)) for item in value
    ):
        return Definitions(assets=list(value))
    if callable(value) and not isinstance(value, type):
        try:
            produced = value()
        except Exception as exc:
            raise DefinitionsError(
                f"Calling {spec!r} to get the Dagster definitions failed:\n{_exception_summary(exc)}"
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
    assets_def = dbt_assets(
        manifest=project.manifest, project=dbt_project, name=f"{project.project_name}_dbt_assets"
    )(_dbt_assets)

    return Definitions(
        assets=[assets_def],
        resources={DEFAULT_DBT_RESOURCE_KEY: DbtCliResource(project_dir=str(project.project_dir))},
    )


def relocate_definitions(defs: Definitions, project: DbtAssetsProject) -> Definitions:
    """Point every ``DbtCliResource`` and every ``DbtProject`` in ``defs`` at ``project``."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY
    from dagster_shared.record import replace

    def relocate_spec(spec: Any) -> Any:
        dbt_project = spec.metadata.get(DAGSTER_DBT_PROJECT_METADATA_KEY)
        if dbt_project is None:
            return spec
        moved = replace(
            dbt_project,
            project_dir=project.project_dir,
            profiles_dir=project.profiles_dir,
            profile=project.profile_name,
            target=project.target_name,
            target_path=Path("target"),
            manifest_path=project.target_dir / "manifest.json",
            packaged_project_dir=None,
            state_path=None,
        )
        return spec.replace_attributes(metadata={**spec.metadata, DAGSTER_DBT_PROJECT_METADATA_KEY: moved})

    relocated = defs.permissive_map_resolved_asset_specs(relocate_spec, None)
    return replace(relocated, resources=relocate_resources(defs.resources or {}, project))


def relocate_resources(
    resources: Mapping[str, Any], project: DbtAssetsProject, *, vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
) -> dict[str, Any]:
    """Replace each ``DbtCliResource`` with one bound to the temporary project and profile."""
    from dagster_dbt import DbtCliResource

    return {
        key: (
            relocated_cli_resource(value, project, vars=vars, runs_dir=runs_dir)
            if isinstance(value, DbtCliResource)
            else value
        )
        for key, value in resources.items()
    }


def relocated_cli_resource(
    resource: Any, project: DbtAssetsProject, *, vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
) -> Any:
    """A copy of ``resource`` that can only reach the temporary project and DuckDB profile."""
    executable = resource.dbt_executable
    if shutil.which(executable) is None or Path(executable).name == executable:
        sibling = Path(sys.executable).with_name("dbt")
        if sibling.exists():
            executable = str(sibling)
    return isolated_cli_resource_class()(
        project_dir=str(project.project_dir),
        profiles_dir=str(project.profiles_dir),
        profile=project.profile_name,
        target=project.target_name,
        global_config_flags=list(resource.global_config_flags),
        dbt_executable=executable,
        dbt_assets_vars=json.dumps(dict(vars), sort_keys=True, default=str) if vars else "",
        dbt_assets_runs_dir=str(runs_dir) if runs_dir else "",
        dbt_assets_partial_parse=str(project.target_dir / "partial_parse.msgpack"),
    )


@functools.cache
def isolated_cli_resource_class() -> type:
    """The ``DbtCliResource`` subclass the plugin binds (built lazily: dagster-dbt is slow to import)."""
    from dagster_dbt import DbtCliResource

    class IsolatedDbtCliResource(DbtCliResource):
        """A ``DbtCliResource`` for tests: adds the test's ``vars``, writes each invocation
        under a known folder (so the plugin can read ``run_results.json``) and seeds it with
        the session's partial-parse file so dbt does not re-parse the project from scratch."""

        dbt_assets_vars: str = ""
        dbt_assets_runs_dir: str = ""
        dbt_assets_partial_parse: str = ""

        @functools.cached_property
        def _cli_version(self) -> Any:
            # dagster-dbt runs `dbt --version` in a subprocess (seconds) on every resource
            # instance; when the executable is this interpreter's dbt, its version is known.
            from dagster_dbt.compat import DBT_PYTHON_VERSION

            if DBT_PYTHON_VERSION is not None and Path(self.dbt_executable).parent == Path(sys.executable).parent:
                return DBT_PYTHON_VERSION
            return super()._cli_version

        def cli(self, args: Sequence[str], *, target_path: Path | None = None, **kwargs: Any) -> Any:
            args = merge_vars(list(args), json.loads(self.dbt_assets_vars) if self.dbt_assets_vars else {})
            if target_path is None and self.dbt_assets_runs_dir:
                target_path = Path(self.dbt_assets_runs_dir) / uuid.uuid4().hex[:10]
            if target_path is not None and self.dbt_assets_partial_parse:
                partial = Path(self.dbt_assets_partial_parse)
                absolute = target_path if target_path.is_absolute() else Path(self.project_dir) / target_path
                if partial.exists() and not (absolute / partial.name).exists():
                    absolute.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(partial, absolute / partial.name)
            return super().cli(args, target_path=target_path, **kwargs)

    return IsolatedDbtCliResource


def merge_vars(args: list[str], extra: Mapping[str, Any]) -> list[str]:
    """Merge ``extra`` into the ``--vars`` of ``args`` (the test's values win)."""
    if not extra:
        return args
    merged: dict[str, Any] = {}
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--vars" and index + 1 < len(args):
            merged.update(yaml.safe_load(args[index + 1]) or {})
            index += 2
            continue
        if arg.startswith("--vars="):
            merged.update(yaml.safe_load(arg.split("=", 1)[1]) or {})
        else:
            out.append(arg)
        index += 1
    merged.update(extra)
    return [*out, "--vars", json.dumps(merged, sort_keys=True, default=str)]


def dbt_assets_definitions_of(defs: Definitions) -> list[AssetsDefinition]:
    """The ``@dbt_assets`` definitions (those carrying a dbt manifest) in ``defs``."""
    from dagster import AssetsDefinition
    from dagster_dbt.asset_utils import DAGSTER_DBT_MANIFEST_METADATA_KEY

    found = []
    for item in defs.assets or []:
        if isinstance(item, AssetsDefinition) and any(
            DAGSTER_DBT_MANIFEST_METADATA_KEY in (metadata or {}) for metadata in item.metadata_by_key.values()
        ):
            found.append(item)
    return found


def _exception_summary(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if "importlib" not in f.filename]
    where = f"  at {user_frames[-1].filename}:{user_frames[-1].lineno}\n" if user_frames else ""
    return f"{where}  {type(exc).__name__}: {exc}"

