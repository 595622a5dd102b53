"""Point every piece of dbt in the definitions under test at the temporary project: each
``DbtCliResource`` becomes the isolated resource (:mod:`pytest_dbt_assets.dbt_resource`) bound
to the temporary project and DuckDB profile, and each ``DbtProject`` carried by ``@dbt_assets``
moves there too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.compat.dagster import with_resources
from pytest_dbt_assets.compat.dagster_dbt import map_dbt_projects, moved_dbt_project
from pytest_dbt_assets.components import isolate_components
from pytest_dbt_assets.dbt_resource import relocated_cli_resource
from pytest_dbt_assets.definitions import validate_definitions

if TYPE_CHECKING:
    from dagster import Definitions

    from pytest_dbt_assets.project import DbtAssetsProject


def relocate_definitions(defs: Definitions, project: DbtAssetsProject) -> Definitions:
    """Point every ``DbtCliResource`` and every ``DbtProject`` in ``defs`` at ``project``, or,
    with several dbt projects (``project.others``), each at its own temporary copy (matched by
    the user's folder, else by dbt project name; see :meth:`DbtAssetsProject.counterpart`)."""
    defs = isolate_components(defs, project)
    main = project
    # Every spec of one @dbt_assets carries the same DbtProject: each is moved once (finding
    # its counterpart resolves paths), and its specs share the moved one, as they shared it.
    moved: dict[int, tuple[Any, Any]] = {}

    def move(dbt_project: Any) -> Any:
        if id(dbt_project) in moved:
            return moved[id(dbt_project)][1]
        project = main.counterpart(getattr(dbt_project, "project_dir", None), getattr(dbt_project, "name", None))
        moved[id(dbt_project)] = (
            dbt_project,  # kept, so that its id is not reused during the mapping
            moved_dbt_project(
                dbt_project,
                project_dir=project.project_dir,
                profiles_dir=project.profiles_dir,
                profile=project.profile_name,
                target=project.target_name,
                manifest_path=project.target_dir / "manifest.json",
            ),
        )
        return moved[id(dbt_project)][1]

    relocated = map_dbt_projects(defs, move)
    relocated = with_resources(relocated, relocate_resources(defs.resources or {}, project))
    validate_definitions(relocated)
    return relocated  # type: ignore[no-any-return]


def relocate_resources(
    resources: Mapping[str, Any],
    project: DbtAssetsProject,
    *,
    vars: Mapping[str, Any] | None = None,
    runs_dir: Path | None = None,
    dbt_executable: str | None = None,
    indirect_selection: str | None = None,
) -> dict[str, Any]:
    """Replace each ``DbtCliResource`` with one bound to the temporary project and profile
    (with several dbt projects, the one of the resource's ``project_dir``).

    ``dbt_executable`` replaces the resource's own (the plugin's warm dbt worker);
    ``indirect_selection`` is dbt's ``--indirect-selection`` for the run (None: production's).
    """
    # Called for every materialization, when Dagster is long imported; not at start-up.
    from dagster_dbt import DbtCliResource

    return {
        key: (
            relocated_cli_resource(
                value,
                project.counterpart(value.project_dir),
                vars=vars,
                runs_dir=runs_dir,
                dbt_executable=dbt_executable,
                indirect_selection=indirect_selection,
            )
            if isinstance(value, DbtCliResource)
            else value
        )
        for key, value in resources.items()
    }
