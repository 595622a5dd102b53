import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_snowflake import SnowflakeResource

from .assets import jaffle_dbt_assets, store_revenue_report, stores
from .project import jaffle_project

defs = dg.Definitions(
    assets=[stores, jaffle_dbt_assets, store_revenue_report],
    resources={
        "dbt": DbtCliResource(project_dir=jaffle_project),
        # Production's connection, from the deployment's secrets. Under pytest the plugin routes
        # it to its Snowflake emulator, with or without SNOWFLAKE_* set: no override needed.
        "snowflake": SnowflakeResource(
            account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
            user=dg.EnvVar("SNOWFLAKE_USER"),
            password=dg.EnvVar("SNOWFLAKE_PASSWORD"),
            database="ANALYTICS",
            schema="PUBLIC",
            warehouse="REPORTING",
        ),
    },
)
