"""End to end: the user's Definitions, translator and Python assets, seen as a graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repos import GRAPH_SNAPSHOT_TEST, SHOP_DBT_FILES, write_files

pytestmark = pytest.mark.e2e


def test_changed_ref_asset_and_group_fail_snapshot_until_updated(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {"tests/test_graph.py": GRAPH_SNAPSHOT_TEST},
    )
    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=1)
    snapshot = shop_repo.path / "tests/__snapshots__/test_graph/test_graph.yaml"
    before = snapshot.read_text()
    assert "acme/staging/stg_orders" in before

    # orders now reads the seed directly instead of stg_orders; a model is added; a group renamed.
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/orders.sql": "select * from {{ ref('raw_orders') }}",
            "shop/models/marts/refunds.sql": "select * from {{ ref('stg_orders') }} where amount < 0",
        },
    )
    definitions = shop_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(definitions.read_text().replace('group_name="ml"', 'group_name="scoring"'))
    failed = shop_repo.runpytest("-vv")  # every "What changed" line, not pytest's first lines
    failed.assert_outcomes(failed=1)
    for line in (
        "*dependency removed: acme/marts/orders -> acme/staging/stg_orders*",
        "*dependency added: acme/marts/orders -> acme/raw/raw_orders*",
        "*asset added: acme/marts/refunds*",
        "*group changed: customer_scores ml -> scoring*",
    ):
        failed.stdout.fnmatch_lines([line])
    assert snapshot.read_text() == before

    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=1)
    assert "acme/raw/raw_orders" in snapshot.read_text().split("acme/marts/orders:")[1].split("group")[0]
    shop_repo.runpytest().assert_outcomes(passed=1)


def test_default_definitions_without_dagster_code(pytester: pytest.Pytester) -> None:
    write_files(
        pytester.path,
        {
            **SHOP_DBT_FILES,
            "pyproject.toml": """
                [tool.pytest.ini_options]
                dbt_assets_project_dir = "shop"
            """,
            "tests/test_graph.py": """
                def test_graph(dbt_asset_graph):
                    assert "customers" in dbt_asset_graph.keys
                    assert dbt_asset_graph.upstream("customers") == {"stg_customers", "stg_orders"}
            """,
        },
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_custom_translator_keys_groups_and_deps_and_the_user_tree_unchanged(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "tests/test_graph.py": """
                def test_graph(dbt_asset_graph):
                    assert "acme/marts/customers" in dbt_asset_graph.keys
                    assert dbt_asset_graph.groups["acme/marts/customers"] == "acme_marts"
                    assert dbt_asset_graph.groups["acme/raw/raw_orders"] == "acme_raw"
                    assert dbt_asset_graph.deps["acme/marts/customers"] == [
                        "acme/staging/stg_customers", "acme/staging/stg_orders"]
                    assert dbt_asset_graph.upstream("customer_scores") == {"acme/marts/customers"}
                    assert "customer_scores" in dbt_asset_graph.downstream("acme/marts/customers")
                    assert dbt_asset_graph.checks["acme/marts/customers"] == [
                        "not_null_customers_customer_id", "unique_customers_customer_id"]
            """,
            "tests/test_run.py": """
                def test_run(dbt_asset_graph, dbt_assets_materialize):
                    assert dbt_assets_materialize(dbt_select="+customers +orders").success
            """,
        },
    )
    before = _tree(shop_repo.path)
    shop_repo.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    # The user's tree: only the plugin's target/ changed, and no production database appeared.
    after = _tree(shop_repo.path)
    changed = {
        path
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path) and "__pycache__" not in path
    }
    assert changed
    assert all(path.startswith("shop/target/") for path in changed), changed
    assert not (shop_repo.path / "shop/prod.duckdb").exists()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
