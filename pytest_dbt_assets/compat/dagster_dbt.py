"""dagster-dbt: the manifest and ``DbtProject`` of ``@dbt_assets``, the ``DbtCliResource``
steps the isolated resource (``dbt_resource.py``) replaces, the invocation's process and
adapter, metadata keys, and ``DbtProject``'s constructor. ``DbtProjectComponent``'s touches
are in :mod:`.dagster_dbt_components`.

dagster-dbt is imported inside each function: the plugin imports compat at start-up, and
importing dagster-dbt costs seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat import missing_attributes, shim


def dbt_assets_manifest(assets_def: Any) -> tuple[Mapping[str, Any], Any, Any]:
    """The manifest (a dict), translator and ``DbtProject`` (or None) of one ``@dbt_assets``."""
    from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

    return get_manifest_and_translator_from_dbt_assets([assets_def])


@shim("dagster-dbt", "dagster_dbt.asset_utils.get_manifest_and_translator_from_dbt_assets")
def check_dbt_assets_manifest() -> str | None:
    from dagster_dbt import asset_utils

    return missing_attributes(asset_utils, "get_manifest_and_translator_from_dbt_assets")


def map_dbt_projects(defs: Any, move: Callable[[Any], Any]) -> Any:
    """``defs`` with the ``DbtProject`` each asset spec carries (``@dbt_assets(project=...)``)
    replaced by ``move(project)``; specs without one are left as they are."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY

    def moved_spec(spec: Any) -> Any:
        dbt_project = spec.metadata.get(DAGSTER_DBT_PROJECT_METADATA_KEY)
        if dbt_project is None:
            return spec
        return spec.replace_attributes(metadata={**spec.metadata, DAGSTER_DBT_PROJECT_METADATA_KEY: move(dbt_project)})

    return defs.permissive_map_resolved_asset_specs(moved_spec, None)


@shim(
    "dagster-dbt",
    "dagster_dbt.asset_utils.DAGSTER_DBT_PROJECT_METADATA_KEY, Definitions.permissive_map_resolved_asset_specs",
)
def check_map_dbt_projects() -> str | None:
    from dagster import Definitions
    from dagster_dbt import asset_utils

    return missing_attributes(asset_utils, "DAGSTER_DBT_PROJECT_METADATA_KEY") or missing_attributes(
        Definitions, "permissive_map_resolved_asset_specs"
    )


# DbtProject's fields that say where dbt runs and what it reads, and their values in the
# temporary project (relocate.py); every other field is kept.
_DBT_PROJECT_LOCATION_FIELDS = (
    "project_dir",
    "profiles_dir",
    "profile",
    "target",
    "target_path",
    "manifest_path",
    "packaged_project_dir",
    "state_path",
)


def moved_dbt_project(
    dbt_project: Any, *, project_dir: Path, profiles_dir: Path, profile: str, target: str, manifest_path: Path
) -> Any:
    """``dbt_project`` (a ``DbtProject``) pointing at another project folder and profile, with
    ``target/`` inside it and no packaged copy or state folder of its own."""
    from dagster_shared.record import replace

    return replace(
        dbt_project,
        project_dir=project_dir,
        profiles_dir=profiles_dir,
        profile=profile,
        target=target,
        target_path=Path("target"),
        manifest_path=manifest_path,
        packaged_project_dir=None,
        state_path=None,
    )


@shim("dagster-dbt", "dagster_shared.record.replace on DbtProject, and its location fields")
def check_moved_dbt_project() -> str | None:
    from dagster_dbt import DbtProject
    from dagster_shared.record import get_record_annotations

    fields = set(get_record_annotations(DbtProject))
    missing = [name for name in _DBT_PROJECT_LOCATION_FIELDS if name not in fields]
    if missing:
        return f"DbtProject has no field {', '.join(missing)}"
    if any(name not in _DBT_PROJECT_LOCATION_FIELDS for name in fields if "path" in name or "dir" in name):
        extra = sorted(
            name for name in fields if ("path" in name or "dir" in name) and name not in _DBT_PROJECT_LOCATION_FIELDS
        )
        return f"DbtProject has location fields relocate does not move: {', '.join(extra)}"
    return None


def dbt_python_version() -> str | None:
    """The version of the dbt-core importable in this interpreter, as dagster-dbt reads it."""
    from dagster_dbt.compat import DBT_PYTHON_VERSION

    return None if DBT_PYTHON_VERSION is None else str(DBT_PYTHON_VERSION)


@shim("dagster-dbt", "dagster_dbt.compat.DBT_PYTHON_VERSION")
def check_dbt_python_version() -> str | None:
    from dagster_dbt import compat as dagster_dbt_compat

    return missing_attributes(dagster_dbt_compat, "DBT_PYTHON_VERSION")


@functools.cache
def dbt_cli_resource_with_hooks() -> type:
    """``DbtCliResource`` with the two private steps it takes on every call made overridable
    under public names of the plugin's (``dbt_resource.py`` overrides them):

    - ``dbt_assets_known_version()``: the dbt version, or None for dagster-dbt's own way (a
      ``dbt --version`` subprocess per resource instance);
    - ``dbt_assets_core_adapter(args, build)``: the dbt-core adapter ``cli(args)`` passes to the
      invocation; ``build()`` builds it as dagster-dbt does (importing dbt and parsing every macro).
    """
    from dagster_dbt import DbtCliResource
    from packaging import version as packaging_version

    class DbtCliResourceWithHooks(DbtCliResource):
        def dbt_assets_known_version(self) -> str | None:
            return None

        def dbt_assets_core_adapter(self, args: Sequence[str], build: Callable[[], Any]) -> Any:
            return build()

        @functools.cached_property
        def _cli_version(self) -> Any:
            known = self.dbt_assets_known_version()
            return packaging_version.parse(known) if known else super()._cli_version

        def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
            initialize = super()._initialize_dbt_core_adapter
            return self.dbt_assets_core_adapter(args, lambda: initialize(args))

    return DbtCliResourceWithHooks


@shim(
    "dagster-dbt",
    "DbtCliResource._cli_version (cached property), DbtCliResource._initialize_dbt_core_adapter(args) called by "
    "cli(args), its result passed to DbtCliInvocation.adapter",
)
def check_dbt_cli_resource_with_hooks() -> str | None:
    # Behaviour: cli() of a resource whose "dbt" is this Python (`python --version`, quick).
    built: list[Sequence[str]] = []
    adapter = object()

    class Probe(dbt_cli_resource_with_hooks()):  # type: ignore[misc]
        def dbt_assets_known_version(self) -> str | None:
            return "1.10.0"

        def dbt_assets_core_adapter(self, args: Sequence[str], build: Callable[[], Any]) -> Any:
            built.append(list(args))
            return adapter

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "dbt_project.yml").write_text("name: probe\n", encoding="utf-8")
        try:
            resource = Probe(project_dir=folder, dbt_executable=sys.executable)
            version = str(resource._cli_version)
            invocation = resource.cli(["--version"], target_path=Path(folder) / "target")
            invocation_process(invocation).wait(timeout=60)
        except Exception as error:  # noqa: BLE001 - the check reports whatever broke
            return f"{type(error).__name__}: {error}"
    if version != "1.10.0":
        return f"the version given is not the one dagster-dbt reads ({version})"
    if built != [["--version"]]:
        return f"cli(['--version']) asked for the adapter {len(built)} times, with {built}"
    return None if invocation.adapter is adapter else "the invocation does not hold the adapter cli() built"


def route_invocation_adapter(invocation: Any, read: Callable[[Any], Any], write: Callable[[Any, Any], None]) -> None:
    """Make ``invocation.adapter`` (a ``DbtCliInvocation``) a property: reads call
    ``read(invocation)``, writes ``write(invocation, value)``; the field's own value stays in
    ``invocation.__dict__["adapter"]``."""
    invocation.__class__ = _adapter_routed_class(invocation.__class__, read, write)


@functools.cache
def _adapter_routed_class(cls: Any, read: Callable[[Any], Any], write: Callable[[Any, Any], None]) -> type:
    return type(cls.__name__, (cls,), {"adapter": property(read, write), "__module__": cls.__module__})


@shim("dagster-dbt", "DbtCliInvocation.adapter (a field of a plain, unfrozen dataclass, read after cli() returns)")
def check_route_invocation_adapter() -> str | None:
    from dagster_dbt import DbtCliInvocation

    if not dataclasses.is_dataclass(DbtCliInvocation) or "adapter" not in {
        item.name for item in dataclasses.fields(DbtCliInvocation)
    }:
        return "DbtCliInvocation has no adapter field"
    if hasattr(DbtCliInvocation, "__slots__") or DbtCliInvocation.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return "DbtCliInvocation is frozen or slotted: its adapter cannot be routed"
    invocation = object.__new__(DbtCliInvocation)
    invocation.__dict__["adapter"] = "built"
    try:
        route_invocation_adapter(invocation, lambda self: self.__dict__["adapter"] + " and read", lambda self, v: None)
        read = invocation.adapter
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    if not isinstance(invocation, DbtCliInvocation) or read != "built and read":
        return "a routed invocation does not read its adapter through the property"
    return None


def invocation_process(invocation: Any) -> subprocess.Popen[bytes]:
    """The dbt process of a ``DbtCliInvocation``."""
    return invocation.process  # type: ignore[no-any-return]


@shim("dagster-dbt", "DbtCliInvocation.process (the dbt subprocess)")
def check_invocation_process() -> str | None:
    import dataclasses

    from dagster_dbt import DbtCliInvocation

    if dataclasses.is_dataclass(DbtCliInvocation) and "process" in {
        f.name for f in dataclasses.fields(DbtCliInvocation)
    }:
        return None
    return "DbtCliInvocation has no process field"


def is_dbt_output_stream(obj: Any) -> bool:
    """Whether ``obj`` is dagster-dbt's generator over a dbt command's output. Dropped
    unfinished, it yields again when Python closes it (a bare ``except:`` catches the
    ``GeneratorExit``), and Python reports "generator ignored GeneratorExit"."""
    module = sys.modules.get("dagster_dbt.core.dbt_cli_invocation")  # not imported: not one
    stream = getattr(getattr(module, "DbtCliInvocation", None), "_stream_stdout", None)
    return stream is not None and getattr(obj, "gi_code", None) is stream.__code__


@shim("dagster-dbt", "DbtCliInvocation._stream_stdout, the generator over a dbt command's output")
def check_is_dbt_output_stream() -> str | None:
    import inspect

    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    stream = getattr(DbtCliInvocation, "_stream_stdout", None)
    return None if inspect.isgeneratorfunction(stream) else "DbtCliInvocation._stream_stdout is no generator function"


# dagster-dbt's error when a dbt command fails; a step failure carries only its class name.
DBT_CLI_ERROR_CLASS = "DagsterDbtCliRuntimeError"


def is_dbt_cli_error(class_name: str) -> bool:
    """Whether a failed step's error (Dagster keeps only its class name) is dbt's command failing."""
    return class_name == DBT_CLI_ERROR_CLASS


@shim("dagster-dbt", "dagster_dbt.DagsterDbtCliRuntimeError, matched by class name in step failures")
def check_is_dbt_cli_error() -> str | None:
    import dagster_dbt

    error = getattr(dagster_dbt, DBT_CLI_ERROR_CLASS, None)
    return (
        None
        if isinstance(error, type) and error.__name__ == DBT_CLI_ERROR_CLASS
        else f"dagster_dbt has no {DBT_CLI_ERROR_CLASS}"
    )


# ---------------------------------------------------------------------------------------------
# dagster-dbt and Dagster: manifests and definitions (manifest, definitions, session)
# ---------------------------------------------------------------------------------------------


def forget_dagster_dbt_manifests() -> None:
    """Empty dagster-dbt's by-path manifest cache, so a module imported (again) in this process
    reads the manifest now on disk. Free when dagster-dbt is not imported yet (nothing cached)."""
    module = sys.modules.get("dagster_dbt.dbt_manifest")
    reader = getattr(module, "read_manifest_path", None)
    if reader is not None and hasattr(reader, "cache_clear"):
        reader.cache_clear()


@shim("dagster-dbt", "dagster_dbt.dbt_manifest.read_manifest_path.cache_clear")
def check_forget_dagster_dbt_manifests() -> str | None:
    try:
        from dagster_dbt.dbt_manifest import read_manifest_path
    except ImportError as error:
        return f"dagster-dbt no longer has {error.name or 'dagster_dbt.dbt_manifest.read_manifest_path'}"
    return None if callable(getattr(read_manifest_path, "cache_clear", None)) else "read_manifest_path is not cached"


def dbt_manifest_metadata_key() -> str:
    """The metadata key under which ``@dbt_assets`` keep the manifest they were built from."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_MANIFEST_METADATA_KEY

    return DAGSTER_DBT_MANIFEST_METADATA_KEY


@shim("dagster-dbt", "dagster_dbt.asset_utils.DAGSTER_DBT_MANIFEST_METADATA_KEY")
def check_dbt_manifest_metadata_key() -> str | None:
    import dagster_dbt.asset_utils

    return missing_attributes(dagster_dbt.asset_utils, "DAGSTER_DBT_MANIFEST_METADATA_KEY")


def dbt_unique_id_metadata_key() -> str:
    """The metadata key under which each dbt asset spec keeps its node's ``unique_id``."""
    from dagster_dbt.asset_utils import DAGSTER_DBT_UNIQUE_ID_METADATA_KEY

    return DAGSTER_DBT_UNIQUE_ID_METADATA_KEY


@shim("dagster-dbt", "dagster_dbt.asset_utils.DAGSTER_DBT_UNIQUE_ID_METADATA_KEY")
def check_dbt_unique_id_metadata_key() -> str | None:
    import dagster_dbt.asset_utils

    return missing_attributes(dagster_dbt.asset_utils, "DAGSTER_DBT_UNIQUE_ID_METADATA_KEY")


def wrap_dbt_project_new(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[], None]:
    """Until the returned undo is called, ``DbtProject(...)`` is built by ``wrap(build)``, where
    ``build(cls, project_dir, **kwargs)`` is dagster-dbt's own constructor."""
    from dagster_dbt import DbtProject

    had_own = "__new__" in DbtProject.__dict__
    build = DbtProject.__new__
    DbtProject.__new__ = staticmethod(wrap(build))  # type: ignore[method-assign,assignment]

    def undo() -> None:
        if had_own:
            DbtProject.__new__ = staticmethod(build)  # type: ignore[method-assign,assignment]
        else:
            del DbtProject.__new__

    return undo


@shim("dagster-dbt", "DbtProject.__new__; manifest_path = project_dir / target_path / manifest.json")
def check_wrap_dbt_project_new() -> str | None:
    """``DbtProject(...)`` goes through its class's ``__new__``, and an absolute ``target_path``
    is where its manifest is read (what ``user_manifest.point_dbt_projects_at`` relies on)."""
    from dagster_dbt import DbtProject

    seen: list[Any] = []

    def spying(build: Callable[..., Any]) -> Callable[..., Any]:
        def spy(cls: type, project_dir: Any, **kwargs: Any) -> Any:
            seen.append(project_dir)
            return build(cls, project_dir, **kwargs)

        return spy

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "dbt_project.yml").write_text("name: probe\n", encoding="utf-8")
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        undo = wrap_dbt_project_new(spying)
        try:
            made = DbtProject(project_dir=root, target_path=elsewhere)
        finally:
            undo()
        if not seen:
            return "DbtProject(...) no longer goes through DbtProject.__new__"
        if Path(made.manifest_path) != elsewhere / "manifest.json":
            return f"an absolute target_path no longer locates the manifest (manifest_path={made.manifest_path})"
    return None
