"""The graph Dagster resolves from the defs folder: the component's dbt assets and the Python asset."""


def test_asset_graph_snapshot(dbt_asset_graph, dbt_assets_snapshot):
    assert dbt_asset_graph == dbt_assets_snapshot


def test_translation_from_yaml(dbt_asset_graph):
    assert "jaffle/customers" in dbt_asset_graph.keys
    assert dbt_asset_graph.groups["jaffle/customers"] == "marts"
    assert dbt_asset_graph.groups["jaffle/raw_orders"] == "raw"


def test_python_asset_downstream_of_dbt_model(dbt_asset_graph):
    assert dbt_asset_graph.upstream("predicted_orders") == {"jaffle/daily_order_summary"}
