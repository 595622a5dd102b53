"""Dagster: replacing a ``Definitions``' resources, a components project's defs state folder,
and the assets a job selects (``graph.py``).

Dagster is imported inside each function: the plugin imports compat at start-up, and importing
Dagster costs seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat import missing_attributes, shim


def with_resources(defs: Any, resources: Mapping[str, Any]) -> Any:
    """``defs`` with its resources replaced (not merged, as ``Definitions.merge`` would)."""
    from dagster_shared.record import replace

    return replace(defs, resources=dict(resources))


@shim("dagster", "dagster_shared.record.replace on Definitions, its resources field")
def check_with_resources() -> str | None:
    from dagster import Definitions
    from dagster_shared.record import get_record_annotations

    return None if "resources" in get_record_annotations(Definitions) else "Definitions has no field resources"


@contextmanager
def local_defs_state_in(folder: Path) -> Iterator[None]:
    """While loading a components project, keep its local defs state (``.local_defs_state``,
    which Dagster creates beside the user's defs module even to find that there is none) in
    ``folder`` instead. Restored on exit."""
    from dagster.components.utils import project_paths

    original = project_paths.get_local_defs_state_dir

    def state_dir(project_root: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    project_paths.get_local_defs_state_dir = state_dir  # type: ignore[assignment]
    try:
        yield
    finally:
        project_paths.get_local_defs_state_dir = original  # type: ignore[assignment]


@shim("dagster", "dagster.components.utils.project_paths.get_local_defs_state_dir, called by get_local_state_dir")
def check_local_defs_state_in() -> str | None:
    # Behaviour: where a component's state folder goes, inside the block.
    from dagster.components.utils import project_paths

    missing = missing_attributes(project_paths, "get_local_defs_state_dir", "get_local_state_dir")
    if missing is not None:
        return missing
    with tempfile.TemporaryDirectory() as project_root, tempfile.TemporaryDirectory() as folder:
        try:
            with local_defs_state_in(Path(folder)):
                found = project_paths.get_local_state_dir("a component", Path(project_root))
        except Exception as error:  # noqa: BLE001 - the check reports whatever broke
            return f"{type(error).__name__}: {error}"
        if Path(folder) not in found.parents:
            return "get_local_state_dir no longer finds its folder through get_local_defs_state_dir"
    return None


def job_asset_keys(job: Any) -> set[Any]:
    """The asset keys a resolved ``JobDefinition`` materializes: its selection as Dagster
    resolved it against the code location's asset graph (empty for a job of plain ops, and for
    an asset job whose selection matches nothing). Dagster exposes no public accessor."""
    return set(job.asset_layer.selected_asset_keys)


@shim("dagster", "JobDefinition.asset_layer.selected_asset_keys")
def check_job_asset_keys() -> str | None:
    from dagster import JobDefinition
    from dagster._core.definitions.assets.job.asset_layer import AssetLayer

    return missing_attributes(JobDefinition, "asset_layer") or missing_attributes(AssetLayer, "selected_asset_keys")


def is_dagster_own_job(name: str) -> bool:
    """True for the jobs Dagster makes by itself: ``__ASSET_JOB`` (every asset) and the
    anonymous job of a schedule or sensor given ``target=`` instead of ``job=``."""
    from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name

    return bool(is_reserved_asset_job_name(name))


@shim("dagster", "dagster._core.definitions.assets.job.asset_job.is_reserved_asset_job_name")
def check_is_dagster_own_job() -> str | None:
    try:
        from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name
    except ImportError as exc:
        return str(exc)
    if not is_reserved_asset_job_name("__ASSET_JOB") or is_reserved_asset_job_name("nightly"):
        return "is_reserved_asset_job_name no longer tells __ASSET_JOB from a user's job"
    return None


def asset_function(assets_def: Any) -> Any:
    """The Python function the user decorated (``@asset``, ``@multi_asset``, ``@dbt_assets``),
    or None when the definition has none (an external ``AssetSpec``). Dagster keeps it on the
    op's compute function, with no public accessor."""
    node = getattr(assets_def, "node_def", None)
    compute_fn = getattr(node, "compute_fn", None)
    return getattr(compute_fn, "decorated_fn", compute_fn)


@shim("dagster", "OpDefinition.compute_fn.decorated_fn of an asset definition")
def check_asset_function() -> str | None:
    from dagster import asset

    @asset
    def probe() -> None:
        return None

    found = asset_function(probe)
    return None if getattr(found, "__name__", None) == "probe" else "the decorated function is no longer found"
