"""dbt projects named by the Dagster code itself (issue 13): `@dbt_assets(project=DbtProject(...))`
brings its own dbt project, so `dbt_assets_project_dir` is optional there as it is for components.

The plugin reads the package's source before any conftest.py imports it (pure, importing
nothing), and checks what it found once the definitions are loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_projects import FINANCE_PROD_PROFILES, PLAIN_TEST, changed_outside_targets
from tests.repos import (
    FINANCE_DBT_FILES,
    PLAIN_DEFINITIONS,
    PROD_PROFILES,
    SHOP_DBT_FILES,
    guarded_user_env,
    run_pytest,
    tree,
    write_files,
)

pytestmark = pytest.mark.e2e

DBT_FILES = {"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()}

# --- a scaffolded repo without dbt_assets_project_dir (end to end) -------------------------------

# `dagster-dbt project scaffold`'s project.py, with the dbt project beside the Dagster package.
SCAFFOLD_FILES = {
    "shop_dagster/__init__.py": "",
    "shop_dagster/project.py": """
        from pathlib import Path

        from dagster_dbt import DbtProject

        shop_project = DbtProject(project_dir=Path(__file__).joinpath("..", "..", "dbt", "shop").resolve())
        shop_project.prepare_if_dev()
    """,
    "shop_dagster/assets.py": """
        import dagster as dg
        from dagster_dbt import DbtCliResource, dbt_assets

        from .project import shop_project


        @dbt_assets(manifest=shop_project.manifest_path, project=shop_project)
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()
    """,
    "shop_dagster/definitions.py": """
        import dagster as dg
        from dagster_dbt import DbtCliResource

        from .assets import shop_dbt_assets
        from .project import shop_project

        defs = dg.Definitions(assets=[shop_dbt_assets], resources={"dbt": DbtCliResource(project_dir=shop_project)})
    """,
    "pyproject.toml": """
        [tool.pytest.ini_options]
        pythonpath = ["."]
        dbt_assets_definitions = "shop_dagster.definitions:defs"
    """,
    # The user's conftest imports their Dagster package, so the manifest is read at collection.
    "tests/conftest.py": "from shop_dagster.definitions import defs  # noqa: F401\n",
}

SCAFFOLD_TEST = """
    def test_graph(dbt_asset_graph, dbt_assets_project):
        assert dbt_assets_project.project_name == "shop"
        assert dbt_asset_graph.upstream("customers") == {"stg_customers", "stg_orders"}


    def test_customers(dbt_assets_materialize):
        result = dbt_assets_materialize(dbt_select="+customers")
        assert result.row_counts["customers"] == 3
        assert result.checks["unique_customers_customer_id"] == "passed"
"""


def test_scaffolded_project_needs_no_project_dir_key(tmp_path: Path) -> None:
    """A fresh clone (no target/) run as users run it (`-n 2`), with an unreachable Postgres
    profile and DBT_* variables that point elsewhere: the dbt project comes from the code."""
    repo = tmp_path / "repo"
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES)
    write_files(
        repo,
        {**DBT_FILES, **SCAFFOLD_FILES, "dbt/shop/profiles.yml": PROD_PROFILES, "tests/test_shop.py": SCAFFOLD_TEST},
    )
    env |= {"DBT_PROFILES_DIR": str(home / ".dbt"), "DBT_TARGET": "local", "DBT_PROFILE": "shop_prod"}
    before = tree(repo)
    run = run_pytest(repo, "-n", "2", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout, run.stdout[-3000:]
    assert not log.exists() or log.read_text() == "", log.read_text()
    assert changed_outside_targets(before, tree(repo)) == []
    assert (repo / "dbt/shop/target/manifest.json").is_file()
    assert not (repo / "dbt/shop/local_dev.duckdb").exists()


def test_two_plain_dbt_projects_without_the_key(pytester: pytest.Pytester) -> None:
    """Each `DbtProject(...)` brings its own dbt project: both are copied and isolated."""
    write_files(
        pytester.path,
        {
            **DBT_FILES,
            **FINANCE_DBT_FILES,
            "pyproject.toml": SCAFFOLD_FILES["pyproject.toml"].replace("shop_dagster", "warehouse"),
            # DbtCliResource checks, at import, that its folder holds a profiles.yml.
            "dbt/shop/profiles.yml": PROD_PROFILES,
            "dbt/finance/profiles.yml": FINANCE_PROD_PROFILES,
            "warehouse/__init__.py": "",
            "warehouse/definitions.py": PLAIN_DEFINITIONS,
            "tests/test_plain.py": PLAIN_TEST,
        },
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_definitions_using_another_dbt_project_fail_clearly(pytester: pytest.Pytester) -> None:
    """The key names shop; the resource runs finance: testing shop in its place would pass
    while wrong, so the definitions fail, naming both."""
    write_files(
        pytester.path,
        {
            **DBT_FILES,
            **FINANCE_DBT_FILES,
            **SCAFFOLD_FILES,
            "shop_dagster/definitions.py": """
                from pathlib import Path

                import dagster as dg
                from dagster_dbt import DbtCliResource

                from .assets import shop_dbt_assets

                finance = Path(__file__).parent.parent / "dbt" / "finance"
                defs = dg.Definitions(assets=[shop_dbt_assets], resources={"dbt": DbtCliResource(project_dir=str(finance))})
            """,
            "pyproject.toml": SCAFFOLD_FILES["pyproject.toml"] + 'dbt_assets_project_dir = "dbt/shop"\n',
            "tests/conftest.py": "",
            "tests/test_graph.py": "def test_graph(dbt_assets_defs):\n    pass\n",
        },
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*DefinitionsError: Your definitions use the dbt project 'finance' at */dbt/finance, which is "
                "not under test (the plugin tests shop (*/dbt/shop)). Set `dbt_assets_project_dir`*"
            )
        ]
    )


def test_a_project_dir_the_plugin_cannot_read_asks_for_the_key(pytester: pytest.Pytester) -> None:
    write_files(
        pytester.path,
        {
            **DBT_FILES,
            **SCAFFOLD_FILES,
            "shop_dagster/project.py": """
                import os

                from dagster_dbt import DbtProject

                shop_project = DbtProject(project_dir=os.environ.get("SHOP_DBT_DIR", "dbt/shop"))
            """,
            "tests/conftest.py": "",
            "tests/test_graph.py": "def test_graph(dbt_asset_graph):\n    pass\n",
        },
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*ProjectNotFoundError: No dbt project to test: the rootdir * holds no dbt_project.yml, and the "
                "package of shop_dagster.definitions:defs has no DbtProject(project_dir=...)*Set `dbt_assets_project_dir`*"
            )
        ]
    )
