"""The component's own dbt run, on the plugin's throwaway DuckDB, never the prod target."""

from dagster import AssetSelection


def test_marts_and_upstream(dbt_assets_materialize, dbt_assets_snapshot):
    result = dbt_assets_materialize(dbt_select="+customers +orders")
    assert result.success
    assert result.row_counts["jaffle/customers"] == 8
    assert result.summary() == dbt_assets_snapshot


def test_python_asset_on_the_component(dbt_assets_materialize, dbt_assets_snapshot):
    # orders' relationships test reads customers, so customers is selected too.
    result = dbt_assets_materialize(AssetSelection.assets("predicted_orders").upstream(), dbt_select="+customers")
    assert result.row_counts["predicted_orders"] == 3
    assert result.summary() == dbt_assets_snapshot
