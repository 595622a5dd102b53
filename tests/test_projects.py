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

from pytest_dbt_assets.components import find_dg_project
from pytest_dbt_assets.settings import resolve_settings
from tests.repos import SHOP_DBT_FILES, run_pytest, write_files
from tests.test_components import (
    DG_DEFINITIONS,
    DG_PYPROJECT,
    INSTALLED_PACKAGE_CONFTEST,
    SCORES_PY,
    run_one_test_guarded,
    tree,
)
from tests.test_isolation import PROD_PROFILES, guarded_user_env

FINANCE_DBT_FILES: dict[str, str] = {
    "dbt/finance/dbt_project.yml": """
        name: finance
        profile: finance_prod
        models:
          finance:
            +materialized: table
    """,
    "dbt/finance/seeds/budgets.csv": """
        customer_id,budget
        1,10
        2,2
        3,8
    """,
    # shop's `orders` model, read as a source; the asset key ties it to shop's asset.
    "dbt/finance/models/sources.yml": """
        version: 2
        sources:
          - name: shop
            schema: "{{ target.schema }}"
            tables:
              - name: orders
                meta:
                  dagster:
                    asset_key: ["orders"]
    """,
    "dbt/finance/models/revenue.sql": """
        select o.customer_id, sum(o.amount) as revenue, b.budget
        from {{ source('shop', 'orders') }} o
        join {{ ref('budgets') }} b using (customer_id)
        group by o.customer_id, b.budget
    """,
    "dbt/finance/models/schema.yml": """
        version: 2
        models:
          - name: revenue
            columns:
              - name: customer_id
                data_tests: [unique]
    """,
}


def component_yaml(folder: str) -> str:
    return f"""
        type: dagster_dbt.DbtProjectComponent

        attributes:
          project: '{{{{ context.project_root }}}}/dbt/{folder}'
    """


def two_projects_files() -> dict[str, str]:
    return {
        **{"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()},
        **FINANCE_DBT_FILES,
        "pyproject.toml": DG_PYPROJECT,
        "src/shop_dg/__init__.py": "",
        "src/shop_dg/definitions.py": DG_DEFINITIONS,
        "src/shop_dg/defs/__init__.py": "",
        "src/shop_dg/defs/shop_dbt/defs.yaml": component_yaml("shop"),
        "src/shop_dg/defs/finance_dbt/defs.yaml": component_yaml("finance"),
        "src/shop_dg/defs/scores.py": SCORES_PY,
        "conftest.py": INSTALLED_PACKAGE_CONFTEST,
    }


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


# --- discovery (pure) ---------------------------------------------------------------------------


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


# --- end to end -----------------------------------------------------------------------------------

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

PLAIN_DEFINITIONS = """
    from pathlib import Path

    import dagster as dg
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    DBT = Path(__file__).parent.parent / "dbt"
    shop = DbtProject(project_dir=DBT / "shop")
    finance = DbtProject(project_dir=DBT / "finance")


    @dbt_assets(manifest=shop.manifest_path, project=shop)
    def shop_dbt_assets(context: dg.AssetExecutionContext, dbt_shop: DbtCliResource):
        yield from dbt_shop.cli(["build"], context=context).stream()


    @dbt_assets(manifest=finance.manifest_path, project=finance)
    def finance_dbt_assets(context: dg.AssetExecutionContext, dbt_finance: DbtCliResource):
        yield from dbt_finance.cli(["build"], context=context).stream()


    defs = dg.Definitions(
        assets=[shop_dbt_assets, finance_dbt_assets],
        resources={
            "dbt_shop": DbtCliResource(project_dir=shop),
            "dbt_finance": DbtCliResource(project_dir=finance),
        },
    )
"""

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
