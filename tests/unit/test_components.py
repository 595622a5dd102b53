"""components.py and settings: a Dagster components project (`dg` layout) names its definitions
and the dbt projects of its DbtProjectComponents, read from files, nothing run."""

from __future__ import annotations

from pathlib import Path

from pytest_dbt_assets.components import find_dg_project
from pytest_dbt_assets.settings import resolve_settings
from tests.repos import DBT_COMPONENT_YAML, dg_files, two_projects_files, write_files


def test_a_dg_project_names_its_definitions_and_dbt_project(tmp_path: Path) -> None:
    write_files(tmp_path, dg_files())
    found = find_dg_project(tmp_path)
    assert found is not None
    assert found.definitions == "shop_dg.definitions:defs"
    assert found.code_dir == tmp_path / "src"
    assert found.dbt_project_dirs == ((tmp_path / "shop").resolve(),)
    settings = resolve_settings(rootdir=tmp_path, ini_dir=tmp_path, invocation_dir=tmp_path, cli={}, ini={})
    assert settings.definitions == "shop_dg.definitions:defs"
    assert settings.project_dir == (tmp_path / "shop").resolve()


def test_dg_toml_and_a_project_dir_mapping_relative_to_defs_yaml(tmp_path: Path) -> None:
    files = dg_files(
        """
        type: dagster_dbt.DbtProjectComponent
        attributes:
          project:
            project_dir: ../../../../shop
            target: prod
        """
    )
    del files["pyproject.toml"]
    files["dg.toml"] = """
        directory_type = "project"

        [project]
        root_module = "shop_dg"
    """
    write_files(tmp_path, files)
    found = find_dg_project(tmp_path)
    assert found is not None
    assert found.config_file == tmp_path / "dg.toml"
    assert found.dbt_project_dirs == ((tmp_path / "shop").resolve(),)


def test_ini_keys_win_over_the_dg_project(tmp_path: Path) -> None:
    write_files(tmp_path, {**dg_files(), "other/dbt_project.yml": "name: other\n"})
    settings = resolve_settings(
        rootdir=tmp_path,
        ini_dir=tmp_path,
        invocation_dir=tmp_path,
        cli={},
        ini={"project_dir": "other", "definitions": "mine.defs:defs"},
    )
    assert settings.project_dir == tmp_path / "other"
    assert settings.definitions == "mine.defs:defs"


def test_several_dbt_components_each_bring_their_dbt_project(tmp_path: Path) -> None:
    files = dg_files()
    files["src/shop_dg/defs/other_dbt/defs.yaml"] = DBT_COMPONENT_YAML.replace("/shop'", "/other'")
    files["other/dbt_project.yml"] = "name: other\n"
    write_files(tmp_path, files)
    settings = resolve_settings(rootdir=tmp_path, ini_dir=tmp_path, invocation_dir=tmp_path, cli={}, ini={})
    assert settings.project_dirs == ((tmp_path / "other").resolve(), (tmp_path / "shop").resolve())


def test_each_dbt_component_names_its_dbt_project(tmp_path: Path) -> None:
    write_files(tmp_path, two_projects_files())
    found = find_dg_project(tmp_path)
    assert found is not None
    assert found.dbt_project_dirs == ((tmp_path / "dbt/finance").resolve(), (tmp_path / "dbt/shop").resolve())
    settings = resolve_settings(rootdir=tmp_path, ini_dir=tmp_path, invocation_dir=tmp_path, cli={}, ini={})
    assert settings.project_dirs == found.dbt_project_dirs
    assert settings.project_dir == (tmp_path / "dbt/finance").resolve()
    assert settings.definitions == "shop_dg.definitions:defs"


def test_the_project_dir_key_still_picks_one_of_them(tmp_path: Path) -> None:
    write_files(tmp_path, two_projects_files())
    settings = resolve_settings(
        rootdir=tmp_path, ini_dir=tmp_path, invocation_dir=tmp_path, cli={}, ini={"project_dir": "dbt/shop"}
    )
    assert settings.project_dirs == (tmp_path / "dbt/shop",)


def test_project_dir_takes_several_folders(tmp_path: Path) -> None:
    write_files(tmp_path, two_projects_files())

    def resolve(cli: list[str] | None, ini: list[str] | str | None) -> tuple[Path, ...]:
        return resolve_settings(
            rootdir=tmp_path,
            ini_dir=tmp_path / "dbt",
            invocation_dir=tmp_path,
            cli={"project_dir": cli},
            ini={"project_dir": ini},
        ).project_dirs

    dbt = (tmp_path / "dbt").resolve()
    assert resolve(None, ["shop", "finance"]) == (dbt / "shop", dbt / "finance")
    assert resolve(None, "shop") == (dbt / "shop",)
    # The flag, repeated, wins over the ini key; paths from where pytest was started.
    assert resolve(["dbt/finance", "dbt/finance"], ["shop"]) == (dbt / "finance",)
    assert resolve(None, []) == (dbt / "finance", dbt / "shop"), "unset: the components' projects"
