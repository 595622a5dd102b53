from datetime import timedelta

import dagster as dg
from jaffle_components.resources import DuckDBWarehouse

FORECAST_DAYS = 3


@dg.asset(deps=[dg.AssetKey(["jaffle", "daily_order_summary"])], group_name="forecast", kinds={"python", "duckdb"})
def predicted_orders(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Naive forecast: the next few days each get the average daily order count."""
    with warehouse.connect() as conn:
        history = conn.execute(
            "select order_date, order_count from main.daily_order_summary order by order_date"
        ).fetchall()
        rows = []
        if history:
            average = round(sum(row[1] for row in history) / len(history), 2)
            rows = [(history[-1][0] + timedelta(days=offset), average) for offset in range(1, FORECAST_DAYS + 1)]
        conn.execute("create or replace table main.predicted_orders (order_date date, predicted_order_count double)")
        if rows:
            conn.executemany("insert into main.predicted_orders values (?, ?)", rows)
    return dg.MaterializeResult(metadata={"dagster/row_count": len(rows)})
