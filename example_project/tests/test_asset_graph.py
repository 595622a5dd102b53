"""The shape of the asset graph, after our translator: keys, groups, deps, checks."""


def test_asset_graph_snapshot(dbt_asset_graph, dbt_assets_snapshot):
    assert dbt_asset_graph == dbt_assets_snapshot


def test_keys_are_prefixed_and_grouped(dbt_asset_graph):
    dbt_keys = [key for key in dbt_asset_graph.keys if key.startswith("jaffle/")]
    assert "jaffle/marts/customers" in dbt_keys
    assert dbt_asset_graph.groups["jaffle/marts/customers"] == "marts"
    assert dbt_asset_graph.groups["jaffle/staging/stg_orders"] == "staging"
    assert dbt_asset_graph.groups["jaffle/raw/raw_orders"] == "raw"


def test_python_asset_downstream_of_dbt_model(dbt_asset_graph):
    assert dbt_asset_graph.upstream("predicted_orders") == {"jaffle/marts/daily_order_summary"}
    assert "predicted_orders" in dbt_asset_graph.downstream("jaffle/marts/daily_order_summary")


def test_ephemeral_model_is_walked_through(dbt_asset_graph):
    # int_order_payments is ephemeral: customers depends on stg_payments directly.
    assert not any("int_order_payments" in key for key in dbt_asset_graph.keys)
    assert "jaffle/staging/stg_payments" in dbt_asset_graph.upstream("jaffle/marts/customers")


def test_dbt_tests_become_checks(dbt_asset_graph):
    assert "unique_customers_customer_id" in dbt_asset_graph.checks["jaffle/marts/customers"]
