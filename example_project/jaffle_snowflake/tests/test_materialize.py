"""Materialize selections of the real assets on the Snowflake emulator and snapshot the result."""

from dagster import AssetSelection

MARTS = AssetSelection.groups("marts")


def test_marts_and_upstream(dbt_assets_materialize, dbt_assets_snapshot):
    # The marts' upstream includes the Python asset that lands RAW.JAFFLE.STORES.
    result = dbt_assets_materialize(MARTS.upstream())
    assert result.success
    assert "jaffle_sf/jaffle/stores" in result.materialized
    assert result.row_counts["jaffle_sf/marts/customers"] == 8
    assert result.row_counts["jaffle_sf/staging/stg_order_items"] == 24
    assert result.checks["accepted_values_stg_payments_payment_method__credit_card__bank_transfer__coupon"] == "warn"
    assert result.summary(columns=True) == dbt_assets_snapshot


def test_python_assets_end_to_end(dbt_assets_materialize, dbt_assets_project):
    # stores lands the source, dbt builds on it, store_revenue_report reads the mart back. A
    # Dagster selection and a dbt selection together: the run takes their union. customers is
    # added because orders carries a relationships test to it (dbt runs it eagerly).
    result = dbt_assets_materialize(AssetSelection.assets("store_revenue_report").upstream(), dbt_select="+customers")
    assert result.materialized[0] == "jaffle_sf/jaffle/stores"
    assert result.materialized[-1] == "store_revenue_report"
    assert result.row_counts["store_revenue_report"] == 3
    assert dbt_assets_project.query("select name from RAW.JAFFLE.STORES order by id") == [
        ("harbour street",),
        ("old mill",),
        ("station square",),
    ]
    assert dbt_assets_project.query("select store_name from stg_stores order by store_id") == [
        ("Harbour Street",),
        ("Old Mill",),
        ("Station Square",),
    ]


def test_incremental_and_snapshot_run_twice(dbt_assets_materialize, dbt_assets_snapshot):
    first = dbt_assets_materialize(dbt_select="+order_events +customers_snapshot")
    # The second run merges the last two days' orders again (a day of lookback: 5 rows updated,
    # none added) and finds no customer changed.
    second = dbt_assets_materialize(dbt_select="order_events customers_snapshot")
    assert first.row_counts["jaffle_sf/marts/order_events"] == 15
    assert second.row_counts == {"jaffle_sf/marts/order_events": 15, "jaffle_sf/snapshots/customers_snapshot": 8}
    assert {"first": first.summary(), "second": second.summary()} == dbt_assets_snapshot


def test_a_mart_queried_in_snowflake_sql(dbt_assets_materialize, dbt_assets_project):
    # orders carries a relationships test to customers, so both marts are selected; stg_stores
    # reads an empty RAW.JAFFLE.STORES (its declared columns) since stores is not selected.
    dbt_assets_materialize(dbt_select="+customers +orders")
    rows = dbt_assets_project.query(
        """
        select customer_segment, count(*) as customers, iff(sum(number_of_orders) > 10, 'busy', 'quiet') as load
        from ANALYTICS.PUBLIC.CUSTOMERS
        group by all
        order by customer_segment
        """
    )
    assert rows == [("one_time", 3, "quiet"), ("repeat", 5, "busy")]
