from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliResource,
    dbt_assets,
    get_asset_key_for_model,
)

from .project import jaffle_project
from .resources import DuckDBWarehouse

KEY_PREFIX = "jaffle"


class JaffleTranslator(DagsterDbtTranslator):
    """Keys look like ``jaffle/<folder>/<name>``.

    * models: the folder part of the dbt fqn (``jaffle/staging/stg_orders``,
      ``jaffle/marts/customers``)
    * seeds: ``jaffle/raw/<seed>``
    * sources: ``jaffle/<source name>/<table>`` (``jaffle/ecom/raw_stores``)
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        resource_type = dbt_resource_props["resource_type"]
        name = dbt_resource_props["name"]
        if resource_type == "source":
            return dg.AssetKey([KEY_PREFIX, dbt_resource_props["source_name"], name])
        if resource_type == "seed":
            return dg.AssetKey([KEY_PREFIX, "raw", name])
        # fqn is [project_name, *folders, model_name]
        folders = dbt_resource_props["fqn"][1:-1]
        return dg.AssetKey([KEY_PREFIX, *folders, name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type in ("seed", "source"):
            return "raw"
        folders = dbt_resource_props["fqn"][1:-1]
        return folders[0] if folders else None


@dbt_assets(
    manifest=jaffle_project.manifest_path,
    project=jaffle_project,
    dagster_dbt_translator=JaffleTranslator(),
)
def jaffle_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


FORECAST_DAYS = 3


@dg.asset(
    deps=[get_asset_key_for_model([jaffle_dbt_assets], "daily_order_summary")],
    group_name="forecast",
    kinds={"python", "duckdb"},
)
def predicted_orders(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Naive forecast: the next few days each get the average daily orders/revenue."""
    with warehouse.connect() as conn:
        history = conn.execute(
            """
            select order_date, order_count, revenue
            from main.daily_order_summary
            order by order_date
            """
        ).fetchall()

        rows = []
        if history:
            last_date = history[-1][0]
            avg_orders = sum(r[1] for r in history) / len(history)
            avg_revenue = sum(float(r[2]) for r in history) / len(history)
            for offset in range(1, FORECAST_DAYS + 1):
                rows.append(
                    (
                        last_date + timedelta(days=offset),
                        round(avg_orders, 2),
                        round(avg_revenue, 2),
                    )
                )

        conn.execute(
            """
            create or replace table main.predicted_orders (
                order_date date,
                predicted_order_count double,
                predicted_revenue double
            )
            """
        )
        if rows:
            conn.executemany("insert into main.predicted_orders values (?, ?, ?)", rows)

    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "history_days": len(history),
        }
    )
