"""Materialize selections of the real assets on a throwaway DuckDB and snapshot the result."""

import pytest
from dagster import AssetSelection


def test_marts_and_upstream(dbt_assets_materialize, dbt_assets_snapshot):
    # orders carries a relationships test to customers, so both marts are selected.
    result = dbt_assets_materialize(dbt_select="+customers +orders")
    assert result.success
    assert result.row_counts["jaffle/marts/customers"] == 8
    assert result.summary() == dbt_assets_snapshot


def test_full_graph_with_python_asset(dbt_assets_materialize, dbt_assets_snapshot):
    result = dbt_assets_materialize()
    assert "predicted_orders" in result.materialized
    assert result.row_counts["predicted_orders"] == 3
    assert result.checks["accepted_values_stg_payments_payment_method__credit_card__bank_transfer__coupon"] == "warn"
    assert result.summary(columns=True) == dbt_assets_snapshot


def test_dagster_selection_with_python_asset(dbt_assets_materialize, dbt_assets_snapshot):
    # A Dagster selection and a dbt selection together: the run takes their union. customers
    # is added because orders carries a relationships test to it (dbt runs it eagerly).
    result = dbt_assets_materialize(AssetSelection.assets("predicted_orders").upstream(), dbt_select="+customers")
    assert result.materialized[-1] == "predicted_orders"
    assert result.summary() == dbt_assets_snapshot


@pytest.mark.dbt_assets(dbt_select="+customers +orders +daily_order_summary", vars={"min_order_date": "2024-03-05"})
def test_vars_filter_orders(dbt_assets_materialize, dbt_assets_snapshot):
    result = dbt_assets_materialize()
    assert result.row_counts["jaffle/marts/orders"] < 15
    assert result.summary() == dbt_assets_snapshot


def test_incremental_model_run_twice(dbt_assets_materialize, dbt_assets_project, dbt_assets_snapshot):
    first = dbt_assets_materialize(dbt_select="+order_events")
    second = dbt_assets_materialize(dbt_select="order_events")
    assert first.row_counts["jaffle/marts/order_events"] == second.row_counts["jaffle/marts/order_events"] == 15
    assert {"first": first.summary(), "second": second.summary()} == dbt_assets_snapshot


@pytest.mark.dbt_assets(data={"ecom.raw_stores": [{"id": 1, "name": "Only store", "opened_at": "2020-01-01"}]})
def test_source_rows_from_the_test(dbt_assets_materialize, dbt_assets_project):
    result = dbt_assets_materialize(dbt_select="stg_stores")
    assert result.row_counts == {"jaffle/staging/stg_stores": 1}
    assert dbt_assets_project.query("select store_name from main.stg_stores") == [("Only store",)]
