import dagster as dg
from dagster_dbt import DbtCliResource

from .assets import jaffle_dbt_assets, predicted_orders
from .project import jaffle_project
from .resources import DuckDBWarehouse

# The production warehouse: the same file the `prod` target in jaffle_dbt/profiles.yml writes.
PROD_WAREHOUSE_PATH = str(jaffle_project.project_dir.joinpath("prod_warehouse.duckdb"))

defs = dg.Definitions(
    assets=[jaffle_dbt_assets, predicted_orders],
    resources={
        "dbt": DbtCliResource(project_dir=jaffle_project),
        "warehouse": DuckDBWarehouse(path=PROD_WAREHOUSE_PATH),
    },
)
