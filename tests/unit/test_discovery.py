"""discovery.py: the dbt projects a Dagster package names, read from its source (never run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dbt_assets.discovery import find_code_dbt_projects, package_folder
from pytest_dbt_assets.settings import resolve_settings
from tests.repos import FINANCE_DBT_FILES, PLAIN_DEFINITIONS, SHOP_DBT_FILES, write_files

DBT_FILES = {"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()}


@pytest.mark.parametrize(
    "written",
    [
        'DbtProject(project_dir=Path(__file__).joinpath("..", "..", "dbt", "shop").resolve())',
        'DbtProject(Path(__file__).resolve().parent.parent / "dbt" / "shop")',
        'DbtProject(project_dir=Path(__file__).parents[1] / "dbt/shop")',
        'DbtCliResource(project_dir=os.fspath(os.path.join(os.path.dirname(__file__), "..", "dbt", "shop")))',
        'DbtCliResource(project_dir=file_relative_path(__file__, "../dbt/shop"))',
        'DbtProject(project_dir="dbt/shop")',
        "DbtProject(project_dir=SHOP_DIR)",
        'DbtProject(project_dir=DBT_DIR / "shop")',
    ],
)
def test_project_dir_written_in_common_idioms(tmp_path: Path, written: str) -> None:
    write_files(
        tmp_path,
        {
            **DBT_FILES,
            "shop_dagster/__init__.py": "",
            "shop_dagster/project.py": f"""
                import os
                from pathlib import Path

                from dagster import file_relative_path
                from dagster_dbt import DbtCliResource, DbtProject

                DBT_DIR: Path = Path(__file__).parent.parent / "dbt"
                SHOP_DIR = DBT_DIR / "shop"
                project = {written}
            """,
        },
    )
    assert find_code_dbt_projects(tmp_path / "shop_dagster", cwd=tmp_path) == (tmp_path / "dbt" / "shop",)


@pytest.mark.parametrize(
    "written",
    [
        'DbtProject(project_dir=os.environ["DBT_DIR"])',
        "DbtProject(project_dir=locate())",
        'DbtProject(project_dir=Path(__file__).parent / "no_such_project")',
        "DbtProject(project_dir=LOOP)",
    ],
)
def test_what_cannot_be_read_is_not_guessed(tmp_path: Path, written: str) -> None:
    write_files(
        tmp_path,
        {
            **DBT_FILES,
            "shop_dagster/project.py": f"""
                import os
                from pathlib import Path

                from dagster_dbt import DbtProject

                LOOP = LOOP / "x"
                project = {written}
            """,
        },
    )
    assert find_code_dbt_projects(tmp_path / "shop_dagster", cwd=tmp_path) == ()


def test_the_package_is_found_beside_the_ini_file_or_under_src(tmp_path: Path) -> None:
    write_files(tmp_path, {"src/shop_dagster/__init__.py": "", "single.py": ""})
    search = (tmp_path, tmp_path / "src")
    assert package_folder("shop_dagster.definitions:defs", search) == tmp_path / "src" / "shop_dagster"
    assert package_folder("single:defs", search) == tmp_path / "single.py"
    assert package_folder("elsewhere.definitions:defs", search) is None


def test_settings_take_the_projects_the_definitions_name(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {**DBT_FILES, **FINANCE_DBT_FILES, "warehouse/__init__.py": "", "warehouse/definitions.py": PLAIN_DEFINITIONS},
    )

    def resolve(ini: dict[str, str | None]) -> tuple[Path, ...]:
        return resolve_settings(
            rootdir=tmp_path, ini_dir=tmp_path, invocation_dir=tmp_path, cli={}, ini=ini
        ).project_dirs

    dbt = tmp_path / "dbt"
    assert resolve({"definitions": "warehouse.definitions:defs"}) == (dbt / "finance", dbt / "shop")
    # A key still wins; with no definitions there is no code to read.
    assert resolve({"definitions": "warehouse.definitions:defs", "project_dir": "dbt/shop"}) == (dbt / "shop",)
    assert resolve({}) == ()
