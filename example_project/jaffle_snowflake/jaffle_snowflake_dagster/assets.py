from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets, get_asset_key_for_model
from dagster_snowflake import SnowflakeResource

from .project import jaffle_project

KEY_PREFIX = "jaffle_sf"


class JaffleTranslator(DagsterDbtTranslator):
    """Keys look like ``jaffle_sf/<folder>/<name>``.

    * models: the folder part of the dbt fqn (``jaffle_sf/staging/stg_orders``,
      ``jaffle_sf/marts/customers``)
    * seeds: ``jaffle_sf/raw/<seed>``
    * sources: ``jaffle_sf/<source name>/<table>`` (``jaffle_sf/jaffle/orders``)
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        resource_type = dbt_resource_props["resource_type"]
        name = dbt_resource_props["name"]
        if resource_type == "source":
            return dg.AssetKey([KEY_PREFIX, dbt_resource_props["source_name"], name])
        if resource_type == "seed":
            return dg.AssetKey([KEY_PREFIX, "raw", name])
        if resource_type == "snapshot":
            return dg.AssetKey([KEY_PREFIX, "snapshots", name])
        # fqn is [project_name, *folders, model_name]
        folders = dbt_resource_props["fqn"][1:-1]
        return dg.AssetKey([KEY_PREFIX, *folders, name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type in ("seed", "source"):
            return "raw"
        if resource_type == "snapshot":
            return "snapshots"
        folders = dbt_resource_props["fqn"][1:-1]
        return folders[0] if folders else None


@dbt_assets(
    manifest=jaffle_project.manifest_path,
    project=jaffle_project,
    dagster_dbt_translator=JaffleTranslator(),
)
def jaffle_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


# The stores loader: the dbt source jaffle.stores (RAW.JAFFLE.STORES) is this asset.
STORES = [
    (1, "harbour street", "2021-05-14"),
    (2, "old mill", "2022-09-01"),
    (3, "station square", "2023-11-20"),
]


@dg.asset(key=[KEY_PREFIX, "jaffle", "stores"], group_name="landing", kinds={"python", "snowflake"})
def stores(snowflake: SnowflakeResource) -> dg.MaterializeResult:
    """Lands the store register into RAW.JAFFLE.STORES, replacing what was there."""
    with snowflake.get_connection() as conn:
        cur = conn.cursor()
        cur.execute("create or replace table RAW.JAFFLE.STORES (id integer, name varchar, opened_at date)")
        cur.executemany("insert into RAW.JAFFLE.STORES (id, name, opened_at) values (%s, %s, %s)", STORES)
    return dg.MaterializeResult(metadata={"dagster/row_count": len(STORES)})


@dg.asset(
    deps=[get_asset_key_for_model([jaffle_dbt_assets], "store_weekly_revenue")],
    group_name="reporting",
    kinds={"python", "snowflake"},
)
def store_revenue_report(snowflake: SnowflakeResource) -> dg.MaterializeResult:
    """Each store's net revenue over all weeks, as the weekly e-mail reports it."""
    with snowflake.get_connection() as conn:
        rows = (
            conn.cursor()
            .execute(
                """
                select store_name, sum(net_revenue)::number(38, 2) as net_revenue
                from ANALYTICS.PUBLIC.STORE_WEEKLY_REVENUE
                group by store_name
                order by net_revenue desc
                """
            )
            .fetchall()
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "top_store": rows[0][0] if rows else "",
        }
    )
