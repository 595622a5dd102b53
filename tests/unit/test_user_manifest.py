"""user_manifest: a DbtProject of a project whose target/ cannot be written reads the plugin's manifest."""

from __future__ import annotations

from pathlib import Path

from pytest_dbt_assets.user_manifest import point_dbt_projects_at


def _dbt_project(folder: Path, name: str) -> Path:
    folder.mkdir()
    (folder / "dbt_project.yml").write_text(f"name: {name}\n", encoding="utf-8")
    return folder


def test_only_the_named_projects_manifest_is_read_elsewhere_until_undone(tmp_path: Path) -> None:
    # Imported here, not at collection, as the plugin does (see tests/e2e/test_docs.py).
    from dagster_dbt import DbtProject

    shop = _dbt_project(tmp_path / "shop", "shop")
    other = _dbt_project(tmp_path / "other", "other")
    undo = point_dbt_projects_at({shop / "target" / "manifest.json": '{"plugin": true}'})
    try:
        redirected = DbtProject(project_dir=shop)
        explicit = DbtProject(project_dir=shop, target_path="target")
        elsewhere = DbtProject(project_dir=shop, target_path="ci_target")
        untouched = DbtProject(project_dir=other)
        read = redirected.manifest_path.read_text(encoding="utf-8")
    finally:
        undo()

    assert read == '{"plugin": true}'
    assert explicit.manifest_path == redirected.manifest_path
    assert not redirected.manifest_path.is_relative_to(shop)  # nothing written in the user's tree
    assert elsewhere.manifest_path == shop / "ci_target" / "manifest.json"
    assert untouched.manifest_path == other / "target" / "manifest.json"
    assert redirected.project_dir == shop and redirected.name == "shop"
    # Undone: DbtProject is dagster-dbt's again, and the plugin's folder is gone.
    assert DbtProject(project_dir=shop).manifest_path == shop / "target" / "manifest.json"
    assert not redirected.manifest_path.exists()
    assert not (shop / "target").exists()
