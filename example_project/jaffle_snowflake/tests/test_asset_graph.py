"""The shape of the asset graph, after our translator: keys, groups, deps, checks."""


def test_asset_graph_snapshot(dbt_asset_graph, dbt_assets_snapshot):
    assert dbt_asset_graph == dbt_assets_snapshot


def test_python_assets_around_the_dbt_project(dbt_asset_graph):
    # The landing asset is the dbt source jaffle.stores; the report reads a mart.
    assert "jaffle_sf/jaffle/stores" in dbt_asset_graph.upstream("jaffle_sf/staging/stg_stores")
    assert dbt_asset_graph.groups["jaffle_sf/jaffle/stores"] == "landing"
    assert dbt_asset_graph.upstream("store_revenue_report") == {"jaffle_sf/marts/store_weekly_revenue"}
    # The order service's export lands in RAW.JAFFLE.ORDERS outside Dagster: a source key of its own.
    assert dbt_asset_graph.deps["jaffle_sf/jaffle/orders"] == []
    assert "jaffle_sf/jaffle/orders" in dbt_asset_graph.upstream("jaffle_sf/staging/stg_order_items")


def test_ephemeral_model_is_walked_through(dbt_asset_graph):
    # int_order_payments is ephemeral: customers depends on stg_payments directly.
    assert not any("int_order_payments" in key for key in dbt_asset_graph.keys)
    assert "jaffle_sf/staging/stg_payments" in dbt_asset_graph.upstream("jaffle_sf/marts/customers")
