"""The manifest the user's Dagster modules read at import, when their tree cannot be written.

The plugin makes ``<dbt project>/target/manifest.json`` its own before any user module is
imported (see :func:`manifest.prepare_manifest`). On a read-only checkout (a CI container
mounting the repo read-only) that file cannot be written; a ``DbtProject`` of the project
then reads the plugin's own manifest instead, from a folder of the plugin's: dagster-dbt's
``DbtProject`` finds its manifest at ``project_dir / target_path / "manifest.json"``, and an
absolute ``target_path`` replaces the project's folder in that path. A manifest named by a
literal path cannot be pointed elsewhere; the session's message says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat.dagster_dbt import wrap_dbt_project_new
from pytest_dbt_assets.owner import make_temp_folder


def point_dbt_projects_at(manifests: Mapping[Path, str]) -> Callable[[], None]:
    """Until the returned undo is called, a ``DbtProject`` whose manifest would be one of
    ``manifests``' paths (the user's unwritable ``target/manifest.json``) reads that path's text
    from a folder of the plugin's instead; every other ``DbtProject`` is built as asked."""
    folder = make_temp_folder()
    targets: dict[Path, Path] = {}
    for number, (path, text) in enumerate(sorted(manifests.items())):
        target = folder / f"target-{number}"
        target.mkdir()
        (target / path.name).write_text(text, encoding="utf-8")
        targets[path.resolve()] = target

    def redirecting(build: Callable[..., Any]) -> Callable[..., Any]:
        def __new__(cls: type, project_dir: Any, **kwargs: Any) -> Any:
            made = build(cls, project_dir, **kwargs)
            target = targets.get(Path(made.manifest_path).resolve())
            return made if target is None else build(cls, project_dir, **{**kwargs, "target_path": target})

        return __new__

    restore = wrap_dbt_project_new(redirecting)

    def undo() -> None:
        restore()
        shutil.rmtree(folder, ignore_errors=True)

    return undo
