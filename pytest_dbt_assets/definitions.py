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
    from dagster_dbt.dbt_manifest import read_manifest_path

    # dagster-dbt caches manifests by path: a re-import in this process (pytester, IDE
    # re-runs) must read the manifest the plugin just wrote, not a stale one.
    read_manifest_path.cache_clear()
    added = str(search_path) not in sys.path
    if added:
        sys.path.insert(0, str(search_path))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything
        raise DefinitionsError(_import_failure(exc, module_name, spec, search_path)) from None
    finally:
        if added and str(search_path) in sys.path:
            sys.path.remove(str(search_path))
    value: Any = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            found = _definitions_in(module)
            hint = f" It defines {', '.join(repr(module_name + ':' + name) for name in found)}." if found else ""
            raise DefinitionsError(
                f"{module_name!r} ({_display_path(getattr(module, '__file__', None), search_path)}) "
                f"has no attribute {attr_path!r} (dbt_assets_definitions = {spec!r}).{hint} "
                "Point the setting at your `dagster.Definitions` object."
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
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(item, (AssetsDefinition, AssetSpec)) for item in value)
    ):
        return Definitions(assets=list(value))
    if callable(value) and not isinstance(value, type):
        try:
            produced = value()
        except Exception as exc:  # noqa: BLE001 - the user's factory may raise anything
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
    assets_def = dbt_assets(manifest=project.manifest, project=dbt_project, name=f"{project.project_name}_dbt_assets")(
        _dbt_assets
    )

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
    relocated = replace(relocated, resources=relocate_resources(defs.resources or {}, project))
    validate_definitions(relocated)
    return relocated


def relocate_resources(
    resources: Mapping[str, Any],
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> dict[str, Any]:
    """Replace each ``DbtCliResource`` with one bound to the temporary project and profile.

    ``dbt_executable`` replaces the resource's own (the plugin's warm dbt worker).
    """
    from dagster_dbt import DbtCliResource

    return {
        key: (
            relocated_cli_resource(value, project, vars=vars, runs_dir=runs_dir, dbt_executable=dbt_executable)
            if isinstance(value, DbtCliResource)
            else value
        )
        for key, value in resources.items()
    }


def relocated_cli_resource(
    resource: Any,
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
) -> Any:
    """A copy of ``resource`` that can only reach the temporary project and DuckDB profile."""
    from dagster_dbt.compat import DBT_PYTHON_VERSION

    executable = dbt_executable or resource.dbt_executable
    if dbt_executable is None and (shutil.which(executable) is None or Path(executable).name == executable):
        sibling = Path(sys.executable).with_name("dbt")
        if sibling.exists():
            executable = str(sibling)
    # The version of this interpreter's dbt, when that is the dbt that will run.
    local = dbt_executable is not None or Path(executable).parent == Path(sys.executable).parent
    return isolated_cli_resource_class()(
        project_dir=str(project.project_dir),
        profiles_dir=str(project.profiles_dir),
        profile=project.profile_name,
        target=project.target_name,
        global_config_flags=list(resource.global_config_flags),
        dbt_executable=executable,
        dbt_assets_vars=json.dumps(dict(vars), sort_keys=True, default=str) if vars else "",
        dbt_assets_runs_dir=str(runs_dir) if runs_dir else "",
        dbt_assets_version=str(DBT_PYTHON_VERSION) if local and DBT_PYTHON_VERSION is not None else "",
    )


@functools.cache
def isolated_cli_resource_class() -> type:
    """The ``DbtCliResource`` subclass the plugin binds (built lazily: dagster-dbt is slow to import)."""
    from dagster_dbt import DbtCliResource

    class IsolatedDbtCliResource(DbtCliResource):
        """A ``DbtCliResource`` for tests: adds the test's ``vars`` and writes each invocation
        under a known folder, so the plugin can read its ``run_results.json``."""

        dbt_assets_vars: str = ""
        dbt_assets_runs_dir: str = ""
        dbt_assets_version: str = ""

        @functools.cached_property
        def _cli_version(self) -> Any:
            # dagster-dbt runs `dbt --version` in a subprocess (seconds) for every resource
            # instance; when the dbt that runs is this interpreter's, its version is known.
            if self.dbt_assets_version:
                from packaging import version

                return version.parse(self.dbt_assets_version)
            return super()._cli_version

        def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
            # dagster-dbt builds an adapter (parsing every macro, most of a second) on each
            # `cli` call, for `fetch_row_counts()` and friends. Its inputs are the same for
            # every call with the same project, profile and vars: build it once per process.
            key = (self.project_dir, self.profiles_dir, self.profile, self.target, _vars_of(args))
            if key not in _ADAPTERS:
                _ADAPTERS[key] = super()._initialize_dbt_core_adapter(args)
            return _ADAPTERS[key]

        def cli(self, args: Sequence[str], *, target_path: Path | None = None, **kwargs: Any) -> Any:
            args = merge_vars(list(args), json.loads(self.dbt_assets_vars) if self.dbt_assets_vars else {})
            if target_path is None and self.dbt_assets_runs_dir:
                target_path = Path(self.dbt_assets_runs_dir) / uuid.uuid4().hex[:10]
            return super().cli(args, target_path=target_path, **kwargs)

    return IsolatedDbtCliResource


_ADAPTERS: dict[tuple[Any, ...], Any] = {}


def _vars_of(args: Sequence[str]) -> str:
    for index, arg in enumerate(args):
        if arg == "--vars" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--vars="):
            return arg.split("=", 1)[1]
    return ""


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
    from dagster_dbt.asset_utils import DAGSTER_DBT_UNIQUE_ID_METADATA_KEY

    producers: dict[str, list[str]] = {}
    for item in defs.assets or []:
        if not isinstance(item, AssetsDefinition) or not item.has_keys:
            continue
        for spec in item.specs:
            unique_id = spec.metadata.get(DAGSTER_DBT_UNIQUE_ID_METADATA_KEY)
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


def _import_failure(exc: BaseException, module_name: str, spec: str, search_path: Path) -> str:
    """What went wrong importing the user's module, where, and what to do about it."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing is not None and (module_name == missing or module_name.startswith(missing + ".")):
        return (
            f"Could not import {module_name!r} (dbt_assets_definitions = {spec!r}): no module "
            f"named {missing!r} is importable from the rootdir ({search_path}).\n"
            'Check the module path; add `pythonpath = ["."]` (or your source folder, e.g. '
            '"src") to [tool.pytest.ini_options] if your package lives there.'
        )
    fix = (
        f"Install {missing!r} in the environment that runs pytest."
        if missing is not None
        else "Fix the error in your code: the plugin imports the module the way Dagster would."
    )
    return (
        f"Importing {module_name!r} (dbt_assets_definitions = {spec!r}) raised an exception:\n"
        f"{_exception_summary(exc, search_path)}\n{fix}"
    )


def _exception_summary(exc: BaseException, search_path: Path | None = None) -> str:
    """The exception and the line of user code that raised it (not dagster's, not ours)."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"  {_display_path(exc.filename, search_path)}:{exc.lineno}\n"
        if exc.text and exc.text.strip():
            where += f"    {exc.text.strip()}\n"
        message = exc.msg
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_ours(f.filename)]
        frames = [f for f in frames if not _is_library_file(f.filename)] or frames
        if frames:
            frame = frames[-1]
            where = f"  {_display_path(frame.filename, search_path)}:{frame.lineno}\n"
            if frame.line:
                where += f"    {frame.line.strip()}\n"
        message = str(exc)
    message = message.strip().replace("\n", "\n    ")
    return f"{where}  {type(exc).__name__}: {message}"


def _is_ours(filename: str) -> bool:
    """Frames of the import machinery and of this plugin: never where the user's error is."""
    path = Path(filename)
    return filename.startswith("<") or "importlib" in path.parts or path.parent == Path(__file__).parent


def _is_library_file(filename: str) -> bool:
    parts = Path(filename).parts
    return "site-packages" in parts or "dist-packages" in parts


def _display_path(filename: str | None, search_path: Path | None) -> str:
    if not filename:
        return "?"
    if search_path is None:
        return filename
    try:
        return str(Path(filename).resolve().relative_to(search_path.resolve()))
    except ValueError:
        return filename


def _definitions_in(module: Any) -> list[str]:
    from dagster import Definitions

    return sorted(name for name, value in vars(module).items() if isinstance(value, Definitions))
