"""Dagster components projects (issue 13): a `dg`-layout repo with a DbtProjectComponent is
found, tested as Dagster loads it, and isolated like any other.

The repo is written the way `create-dagster project` and `dg scaffold defs
dagster_dbt.DbtProjectComponent` make it, as a fresh clone has it: no `target/`, no
`.local_defs_state`, no `[tool.pytest.ini_options]` keys of the plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repos import (
    DG_PYPROJECT,
    PROD_PROFILES,
    SCORES_PY,
    dg_files,
    guarded_user_env,
    run_pytest,
    tree,
    write_files,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def dg_repo(pytester: pytest.Pytester) -> pytest.Pytester:
    write_files(pytester.path, dg_files())
    return pytester


def changed_outside_target(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or changed, leaving out `shop/target/` (the plugin's manifest, as
    documented), caches and the test's own snapshots."""
    ignored = ("shop/target/", "tests/__snapshots__/", ".pytest_cache/")
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    return sorted(path for path in changed if not path.startswith(ignored) and "__pycache__" not in path)


GRAPH_AND_RUN_TEST = """
    import dagster as dg

    from pytest_dbt_assets.graph import build_asset_graph


    def test_graph_is_what_dagster_resolves(dbt_asset_graph, dbt_assets_snapshot):
        from shop_dg.definitions import defs

        # Read from Dagster's own resolution of the user's definitions, not the plugin's.
        resolved = defs().resolve_asset_graph()
        assert dbt_asset_graph.deps == {
            key.to_user_string(): sorted(parent.to_user_string() for parent in resolved.get(key).parent_keys)
            for key in resolved.get_all_asset_keys()
        }
        assert dbt_asset_graph.groups == {
            key.to_user_string(): resolved.get(key).group_name for key in resolved.get_all_asset_keys()
        }
        assert dbt_asset_graph == build_asset_graph(defs())
        assert dbt_asset_graph.upstream("customer_scores") == {"customers"}
        assert dbt_asset_graph == dbt_assets_snapshot


    def test_materialize_with_row_counts(dbt_assets_materialize, dbt_assets_snapshot):
        result = dbt_assets_materialize()
        assert result.row_counts == {
            "customer_scores": 3,
            "customers": 3,
            "orders": 4,
            "raw_customers": 3,
            "raw_orders": 4,
            "stg_customers": 3,
            "stg_orders": 4,
        }
        assert result.checks == {
            "not_null_customers_customer_id": "passed",
            "unique_customers_customer_id": "passed",
            "unique_orders_order_id": "passed",
        }
        assert result.summary() == dbt_assets_snapshot
"""

# Every row count a plain `dbt build` gives, none null.
MATERIALIZATION_SNAPSHOT = """\
# pytest-dbt-assets snapshot, format 1
assets:
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
  stg_customers:
    rows: 3
  stg_orders:
    rows: 4
checks:
  not_null_customers_customer_id: passed
  unique_customers_customer_id: passed
  unique_orders_order_id: passed
success: true
"""


def test_dg_project_graph_and_materialization_without_any_key(dg_repo: pytest.Pytester) -> None:
    write_files(dg_repo.path, {"tests/test_shop.py": GRAPH_AND_RUN_TEST})
    assert not (dg_repo.path / "shop/target").exists()
    dg_repo.runpytest("--snapshot-update").assert_outcomes(passed=2)
    snapshot = dg_repo.path / "tests/__snapshots__/test_shop/test_materialize_with_row_counts.yaml"
    assert snapshot.read_text() == MATERIALIZATION_SNAPSHOT
    # The snapshots hold on a second run, in two xdist workers.
    dg_repo.runpytest("-n", "2").assert_outcomes(passed=2)


COMPONENT_FEATURES_YAML = """
    type: dagster_dbt.DbtProjectComponent

    attributes:
      project: '{{ context.project_root }}/shop'
      exclude: customers
      cli_args:
        - build
        - --vars:
            min_amount: 4
      include_metadata:
        - row_count
      translation:
        key: "shop/{{ node.name }}"
        group_name: "shop_{{ node.resource_type }}"
"""

FEATURES_TEST = """
    def test_graph(dbt_asset_graph):
        assert dbt_asset_graph.groups["shop/orders"] == "shop_model"
        assert dbt_asset_graph.groups["shop/raw_orders"] == "shop_seed"
        assert dbt_asset_graph.upstream("customer_scores") == {"shop/customers"}


    def test_exclude_cli_args_and_include_metadata(dbt_assets_materialize):
        result = dbt_assets_materialize()
        # exclude: customers is no asset of the component: nothing builds it.
        assert "shop/customers" not in result.materialized
        assert "customer_scores" in result.materialized
        # cli_args' --vars reached dbt: orders keeps amounts >= 4 (5, 7, 9).
        assert result.row_counts["shop/orders"] == 3
        reported = {
            event.asset_key.to_user_string(): event.materialization.metadata["dagster/row_count"].value
            for event in result.result.get_asset_materialization_events()
            if "dagster/row_count" in event.materialization.metadata
        }
        # include_metadata: [row_count] reports what the plugin counts in the test database.
        assert reported["shop/orders"] == 3
        assert reported == {key: result.row_counts[key] for key in reported}


    def test_the_test_vars_win_over_cli_args(dbt_assets_materialize):
        result = dbt_assets_materialize(dbt_select="+orders", vars={"min_amount": 8})
        assert result.row_counts["shop/orders"] == 1
"""


def test_translation_exclude_cli_args_and_include_metadata(pytester: pytest.Pytester) -> None:
    files = dg_files(COMPONENT_FEATURES_YAML)
    files["shop/models/marts/orders.sql"] = (
        "select * from {{ ref('stg_orders') }} where amount >= {{ var('min_amount', 0) }}"
    )
    files["src/shop_dg/defs/scores.py"] = SCORES_PY.replace('AssetKey("customers")', 'AssetKey(["shop", "customers"])')
    # The dbt_assets_definitions key named explicitly, as older setups do.
    files["pyproject.toml"] = DG_PYPROJECT + (
        '\n[tool.pytest.ini_options]\ndbt_assets_definitions = "shop_dg.definitions:defs"\n'
    )
    write_files(pytester.path, {**files, "tests/test_features.py": FEATURES_TEST})
    pytester.runpytest().assert_outcomes(passed=3)


ISOLATION_TEST = """
    def test_run(dbt_assets_materialize):
        result = dbt_assets_materialize()
        assert result.success
        assert result.row_counts["customers"] == 3
        assert result.row_counts["customer_scores"] == 3
"""


def run_one_test_guarded(repo: Path, env: dict[str, str], log: Path, home: Path, tmp_path: Path) -> None:
    """Run the repo's one test in ``env`` (from ``guarded_user_env``) with every variable that
    could point dbt or Dagster elsewhere set as a `dg dev` user has them: DBT_* at the user's
    profiles, their local target and a target path outside the repo, `DAGSTER_IS_DEV_CLI`;
    the test passes and nothing connected to the unreachable warehouse."""
    env = env | {
        "DBT_PROFILES_DIR": str(home / ".dbt"),
        "DBT_TARGET": "local",
        "DBT_PROFILE": "shop_prod",
        "DBT_TARGET_PATH": str(tmp_path / "elsewhere"),
        "DAGSTER_IS_DEV_CLI": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    run = run_pytest(repo, env=env)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "1 passed" in run.stdout, run.stdout[-3000:]
    assert not log.exists() or log.read_text() == "", log.read_text()


def test_components_never_reach_the_user_profile_or_tree(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The user's profile targets an unreachable Postgres, DBT_* variables point at the user's
    profiles and a local DuckDB, and `dg dev`'s variable is set (Dagster would then refresh the
    component's state: dbt with the user's profile, written into the defs folder)."""
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES)
    write_files(
        pytester.path,
        {**dg_files(), "shop/profiles.yml": PROD_PROFILES, "tests/test_run.py": ISOLATION_TEST},
    )
    before = tree(pytester.path)
    run_one_test_guarded(pytester.path, env, log, home, tmp_path)
    assert changed_outside_target(before, tree(pytester.path)) == []
    assert not list(pytester.path.rglob(".local_defs_state"))
    for never_created in (
        pytester.path / "shop/local_dev.duckdb",
        pytester.path / "local_dev.duckdb",
        home / ".dbt/local_dev.duckdb",
        tmp_path / "elsewhere",
        tmp_path / "dagster_home",
    ):
        assert not never_created.exists(), never_created


def test_a_stale_local_defs_state_from_dg_dev_is_ignored(dg_repo: pytest.Pytester) -> None:
    """`dg dev` left state in the defs folder (a project copy without a manifest): Dagster
    would build the component from it; the plugin uses its own and leaves it as it is."""
    stale = "src/shop_dg/defs/.local_defs_state/DbtProjectComponent__shop__"
    write_files(
        dg_repo.path,
        {
            f"{stale}/state": "",
            f"{stale}/project/dbt_project.yml": "name: shop\nprofile: shop_prod\n",
            "tests/test_run.py": ISOLATION_TEST,
        },
    )
    before = tree(dg_repo.path)
    dg_repo.runpytest().assert_outcomes(passed=1)
    assert changed_outside_target(before, tree(dg_repo.path)) == []
