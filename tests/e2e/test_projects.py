"""Several dbt projects in one code location (issue 13): a components project with one
`DbtProjectComponent` per dbt project, each found from its defs.yaml, parsed before conftest.py
imports the package, copied to its own temp folder with its own profile, all on one test
DuckDB file, so that `finance` reads `shop`'s models as a source as it does in production.

The repo is a fresh clone (no `target/`, no `.local_defs_state`), laid out as teams keep
several dbt projects beside one Dagster package: `dbt/shop`, `dbt/finance`, and a defs
folder holding a `defs.yaml` for each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_components import run_one_test_guarded
from tests.repos import (
    FINANCE_DBT_FILES,
    PLAIN_DEFINITIONS,
    PROD_PROFILES,
    SHOP_DBT_FILES,
    guarded_user_env,
    run_pytest,
    tree,
    two_projects_files,
    write_files,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_projects_repo(pytester: pytest.Pytester) -> pytest.Pytester:
    write_files(pytester.path, two_projects_files())
    return pytester


def changed_outside_targets(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or changed, leaving out each dbt project's `target/` (the plugin's
    manifest, as documented), caches and the test's own snapshots."""
    ignored = ("dbt/shop/target/", "dbt/finance/target/", "tests/__snapshots__/", ".pytest_cache/")
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    return sorted(path for path in changed if not path.startswith(ignored) and "__pycache__" not in path)


TWO_PROJECTS_TEST = """
    import pytest

    from pytest_dbt_assets.graph import build_asset_graph


    def test_graph_covers_both_projects(dbt_asset_graph, dbt_assets_snapshot):
        from shop_dg.definitions import defs

        assert dbt_asset_graph == build_asset_graph(defs())
        # finance's source is shop's model: one graph across both dbt projects.
        assert dbt_asset_graph.upstream("revenue") == {"budgets", "orders"}
        assert dbt_asset_graph.upstream("customer_scores") == {"customers"}
        assert dbt_asset_graph == dbt_assets_snapshot


    def test_materialize_both_with_row_counts(dbt_assets_materialize, dbt_assets_projects, dbt_assets_snapshot):
        result = dbt_assets_materialize()
        assert result.row_counts == {
            "budgets": 3,
            "customer_scores": 3,
            "customers": 3,
            "orders": 4,
            "raw_customers": 3,
            "raw_orders": 4,
            "revenue": 3,
            "stg_customers": 3,
            "stg_orders": 4,
        }
        assert result.checks["unique_revenue_customer_id"] == "passed"
        assert result.summary() == dbt_assets_snapshot
        # One database: each project's query() sees every project's relations.
        shop, finance = dbt_assets_projects["shop"], dbt_assets_projects["finance"]
        assert shop.duckdb_path == finance.duckdb_path
        assert finance.query("select revenue from revenue where customer_id = 1") == [(12,)]
        assert shop.query("select count(*) from budgets") == [(3,)]


    def test_dagster_selection_across_projects(dbt_assets_materialize):
        result = dbt_assets_materialize("*revenue")
        assert sorted(result.materialized) == ["budgets", "orders", "raw_orders", "revenue", "stg_orders"]
        assert result.row_counts["revenue"] == 3


    def test_dbt_selection_across_projects(dbt_assets_materialize):
        result = dbt_assets_materialize(dbt_select="+orders revenue budgets")
        assert result.row_counts["revenue"] == 3
        assert "customers" not in result.materialized


    def test_each_project_its_own_copy_and_profile(dbt_assets_projects):
        assert sorted(dbt_assets_projects) == ["finance", "shop"]
        shop, finance = dbt_assets_projects["shop"], dbt_assets_projects["finance"]
        assert shop.project_dir != finance.project_dir
        assert shop.profiles_dir != finance.profiles_dir
        assert (finance.project_dir / "models/revenue.sql").is_file()
        assert not (shop.project_dir / "models/revenue.sql").exists()
        assert (shop.project_dir / "target/manifest.json").is_file()
        assert "model.finance.revenue" in finance.manifest["nodes"]
        finance.dbt("seed")
        assert finance.query("select count(*) from budgets") == [(3,)]


    def test_dbt_assets_project_names_the_fixture_for_several(dbt_assets_project):
        pass
"""

# Every row count of both projects, none null.
TWO_PROJECTS_MATERIALIZATION = """\
# pytest-dbt-assets snapshot, format 1
assets:
  budgets:
    rows: 3
  customer_scores:
    rows: 3
  customers:
    rows: 3
  orders:
    rows: 4
  raw_customers:
    rows: 3
  raw_orders:
    rows: 4
  revenue:
    rows: 3
  stg_customers:
    rows: 3
  stg_orders:
    rows: 4
checks:
  not_null_customers_customer_id: passed
  unique_customers_customer_id: passed
  unique_orders_order_id: passed
  unique_revenue_customer_id: passed
success: true
"""


def test_two_dbt_projects_graph_materialization_and_fixtures(two_projects_repo: pytest.Pytester) -> None:
    write_files(two_projects_repo.path, {"tests/test_two.py": TWO_PROJECTS_TEST})
    assert not list(two_projects_repo.path.rglob("target"))
    result = two_projects_repo.runpytest("--snapshot-update")
    result.assert_outcomes(passed=5, errors=1)
    assert (
        "SeveralProjectsError: The code location has 2 dbt projects (finance, shop), each on its own "
        "temporary copy: dbt_assets_project is for a code location with one. Ask for dbt_assets_projects "
        'instead, a mapping of dbt project name to project (e.g. dbt_assets_projects["finance"].dbt(...)); '
        "their query() runs on the one test database they share."
    ) in result.stdout.lines
    snapshots = two_projects_repo.path / "tests/__snapshots__/test_two"
    assert (snapshots / "test_materialize_both_with_row_counts.yaml").read_text() == TWO_PROJECTS_MATERIALIZATION
    graph = (snapshots / "test_graph_covers_both_projects.yaml").read_text()
    assert "revenue" in graph and "customer_scores" in graph
    # The snapshots hold on a second run, in two xdist workers.
    two_projects_repo.runpytest("-n", "2", "-k", "not names_the_fixture").assert_outcomes(passed=5)


ISOLATION_TEST = """
    def test_run(dbt_assets_materialize):
        result = dbt_assets_materialize()
        assert result.success
        assert result.row_counts["revenue"] == 3
        assert result.row_counts["customers"] == 3
"""

FINANCE_PROD_PROFILES = PROD_PROFILES.replace("shop_prod:", "finance_prod:")


def test_several_projects_never_reach_the_user_profiles_or_tree(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Both dbt projects' profiles target an unreachable Postgres, DBT_* variables point at
    the user's profiles and a local DuckDB, and `dg dev`'s variable is set."""
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES + FINANCE_PROD_PROFILES)
    write_files(
        pytester.path,
        {
            **two_projects_files(),
            "dbt/shop/profiles.yml": PROD_PROFILES,
            "dbt/finance/profiles.yml": FINANCE_PROD_PROFILES,
            "tests/test_run.py": ISOLATION_TEST,
        },
    )
    before = tree(pytester.path)
    run_one_test_guarded(pytester.path, env, log, home, tmp_path)
    assert changed_outside_targets(before, tree(pytester.path)) == []
    assert not list(pytester.path.rglob(".local_defs_state"))
    for folder in ("dbt/shop", "dbt/finance"):
        assert (pytester.path / folder / "target/manifest.json").is_file()
    for never_created in (
        pytester.path / "dbt/shop/local_dev.duckdb",
        pytester.path / "dbt/finance/local_dev.duckdb",
        pytester.path / "local_dev.duckdb",
        home / ".dbt/local_dev.duckdb",
        tmp_path / "elsewhere",
        tmp_path / "dagster_home",
    ):
        assert not never_created.exists(), never_created


# --- plain @dbt_assets: several folders in dbt_assets_project_dir ---------------------------------


PLAIN_INI = """
    [tool.pytest.ini_options]
    pythonpath = ["."]
    dbt_assets_project_dir = ["dbt/shop", "dbt/finance"]
    dbt_assets_definitions = "warehouse.definitions:defs"
"""

PLAIN_TEST = """
    def test_both_projects(dbt_assets_materialize, dbt_assets_projects, dbt_asset_graph):
        assert dbt_asset_graph.upstream("revenue") == {"budgets", "orders"}
        result = dbt_assets_materialize("*revenue")
        assert result.row_counts == {"budgets": 3, "orders": 4, "raw_orders": 4, "revenue": 3, "stg_orders": 4}
        assert sorted(dbt_assets_projects) == ["finance", "shop"]
        assert dbt_assets_projects["finance"].query("select sum(revenue) from revenue") == [(24,)]
"""


def test_dbt_assets_of_two_projects_named_in_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Plain `@dbt_assets(project=DbtProject(...))`, one resource per dbt project: the ini key
    lists both folders; each DbtCliResource and DbtProject moves to its own project's copy.
    The user's profiles target an unreachable Postgres, and DBT_* variables are set."""
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES + FINANCE_PROD_PROFILES)
    write_files(
        pytester.path,
        {
            **{"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()},
            **FINANCE_DBT_FILES,
            "dbt/shop/profiles.yml": PROD_PROFILES,
            "dbt/finance/profiles.yml": FINANCE_PROD_PROFILES,
            "pyproject.toml": PLAIN_INI,
            "warehouse/__init__.py": "",
            "warehouse/definitions.py": PLAIN_DEFINITIONS,
            "tests/test_plain.py": PLAIN_TEST,
        },
    )
    env |= {"DBT_PROFILES_DIR": str(home / ".dbt"), "DBT_TARGET": "local", "DBT_PROFILE": "shop_prod"}
    before = tree(pytester.path)
    run = run_pytest(pytester.path, env=env)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "1 passed" in run.stdout, run.stdout[-3000:]
    assert not log.exists() or log.read_text() == "", log.read_text()
    assert changed_outside_targets(before, tree(pytester.path)) == []
    assert not (pytester.path / "dbt/shop/local_dev.duckdb").exists()
    assert not (pytester.path / "dbt/finance/local_dev.duckdb").exists()


def test_several_folders_without_definitions_ask_for_them(pytester: pytest.Pytester) -> None:
    write_files(
        pytester.path,
        {
            **{"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()},
            **FINANCE_DBT_FILES,
            "pyproject.toml": '[tool.pytest.ini_options]\ndbt_assets_project_dir = ["dbt/shop", "dbt/finance"]\n',
            "tests/test_graph.py": "def test_graph(dbt_asset_graph):\n    pass\n",
        },
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "DefinitionsError: 2 dbt projects are configured (*/dbt/shop, */dbt/finance) and no Dagster "
                "definitions: the plugin builds default @dbt_assets for one dbt project only. Set "
                "dbt_assets_definitions in ?tool.pytest.ini_options? to the `package.module:attr` of the "
                "Definitions holding their @dbt_assets."
            )
        ]
    )
