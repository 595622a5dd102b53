from pathlib import Path

import dagster as dg

from jaffle_components.resources import DuckDBWarehouse

# The production warehouse: the file the `prod` target in ../jaffle_dbt/profiles.yml writes.
PROD_WAREHOUSE_PATH = str(Path(__file__).parents[4] / "jaffle_dbt" / "prod_warehouse.duckdb")


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": DuckDBWarehouse(path=PROD_WAREHOUSE_PATH)})
