"""Small user repos (dbt project + Dagster code) for pytester runs, as file dicts."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

SHOP_DBT_FILES: dict[str, str] = {
    "shop/dbt_project.yml": """
        name: shop
        profile: shop_prod
        models:
          shop:
            staging:
              +materialized: view
            marts:
              +materialized: table
    """,
    # The user's "real" warehouse: the plugin must never connect to it.
    "shop/profiles.yml": """
        shop_prod:
          target: prod
          outputs:
            prod:
              type: duckdb
              path: prod.duckdb
    """,
    "shop/seeds/raw_customers.csv": """
        id,name
        1,Ann
        2,Bob
        3,Cy
    """,
    "shop/seeds/raw_orders.csv": """
        id,customer_id,amount
        10,1,5
        11,1,7
        12,2,3
        13,3,9
    """,
    "shop/models/staging/stg_customers.sql": "select id as customer_id, name from {{ ref('raw_customers') }}",
    "shop/models/staging/stg_orders.sql": ("select id as order_id, customer_id, amount from {{ ref('raw_orders') }}"),
    "shop/models/marts/customers.sql": """
        select c.customer_id, c.name, count(o.order_id) as orders
        from {{ ref('stg_customers') }} c
        left join {{ ref('stg_orders') }} o using (customer_id)
        group by 1, 2
    """,
    "shop/models/marts/orders.sql": "select * from {{ ref('stg_orders') }}",
    "shop/models/marts/schema.yml": """
        version: 2
        models:
          - name: customers
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
          - name: orders
            columns:
              - name: order_id
                data_tests: [unique]
    """,
}

# A Dagster code location in the user's repo, laid out like `dagster-dbt project scaffold`.
SHOP_DAGSTER_FILES: dict[str, str] = {
    "shop_dagster/__init__.py": "",
    "shop_dagster/definitions.py": """
        from pathlib import Path

        import dagster as dg
        from dagster_dbt import (
            DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets, get_asset_key_for_model,
        )

        project = DbtProject(project_dir=Path(__file__).parent.parent / "shop")
        project.prepare_if_dev()


        class AcmeTranslator(DagsterDbtTranslator):
            def get_asset_key(self, props):
                folder = props["fqn"][1] if props["resource_type"] == "model" else "raw"
                return dg.AssetKey(["acme", folder, props["name"]])

            def get_group_name(self, props):
                return "acme_" + (props["fqn"][1] if props["resource_type"] == "model" else "raw")


        @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=AcmeTranslator())
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        @dg.asset(deps=[get_asset_key_for_model([shop_dbt_assets], "customers")], group_name="ml")
        def customer_scores():
            return dg.MaterializeResult(metadata={"dagster/row_count": 3})


        defs = dg.Definitions(
            assets=[shop_dbt_assets, customer_scores],
            resources={"dbt": DbtCliResource(project_dir=project)},
        )
    """,
}

SHOP_INI = """
    [tool.pytest.ini_options]
    pythonpath = ["."]
    dbt_assets_project_dir = "shop"
    dbt_assets_definitions = "shop_dagster.definitions:defs"
"""


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write ``relative path -> content`` (dedented) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


# An inner test module asserting the asset graph against its snapshot.
GRAPH_SNAPSHOT_TEST = """
    def test_graph(dbt_asset_graph, dbt_assets_snapshot):
        assert dbt_asset_graph == dbt_assets_snapshot
"""


# An inner test module materializing both marts and their upstream.
MATERIALIZE_MARTS_TEST = """
    def test_run(dbt_assets_materialize):
        assert dbt_assets_materialize(dbt_select="+customers +orders").success
"""


def run_pytest(cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 900):  # type: ignore[no-untyped-def]
    """pytest in a fresh interpreter (for what an in-process run cannot show: the
    environment, leftover processes, signals), quiet and without the cache plugin.
    ``timeout`` is a hang guard for a loaded CI machine, never a measure."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# A Snowflake team's repo as it is: a Snowflake-only profiles.yml templated with env_var(),
# models in Snowflake SQL, a merge incremental, a check snapshot, and Python assets that land a
# source and read a mart through dagster-snowflake's SnowflakeResource, configured from
# SNOWFLAKE_* variables that a pull request's CI does not have.
SNOWFLAKE_SHOP_FILES: dict[str, str] = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "0.1.0"

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        dbt_assets_project_dir = "shop_dbt"
        dbt_assets_definitions = "shop_dagster.definitions:defs"
    """,
    "shop_dbt/dbt_project.yml": """
        name: shop
        profile: shop
        config-version: 2
        models:
          shop:
            staging:
              +materialized: view
            marts:
              +materialized: table
    """,
    "shop_dbt/profiles.yml": """
        shop:
          target: "{{ env_var('DBT_TARGET', 'prod') }}"
          outputs:
            prod:
              type: snowflake
              account: "{{ env_var('SNOWFLAKE_ACCOUNT') }}"
              user: "{{ env_var('SNOWFLAKE_USER') }}"
              password: "{{ env_var('SNOWFLAKE_PASSWORD') }}"
              role: TRANSFORMER
              warehouse: TRANSFORMING
              database: "{{ env_var('SNOWFLAKE_DATABASE', 'ANALYTICS') }}"
              schema: PUBLIC
              threads: 8
    """,
    "shop_dbt/seeds/customers.csv": """
        id,name,country
        1,alice smith,fr
        2,bob jones,de
        3,carol white,fr
    """,
    "shop_dbt/models/staging/_sources.yml": """
        version: 2
        sources:
          - name: raw
            database: RAW
            schema: SHOP
            tables:
              - name: orders
              - name: events
                columns:
                  - name: id
                    data_type: integer
                  - name: tags
                    data_type: varchar
    """,
    "shop_dbt/models/staging/stg_orders.sql": """
        select
            id as order_id,
            customer_id,
            nvl(status, 'unknown') as status,
            zeroifnull(amount) as amount,
            parse_json(payload):channel::string as channel
        from {{ source('raw', 'orders') }}
    """,
    "shop_dbt/models/staging/stg_events.sql": """
        select e.id as event_id, f.value::string as tag
        from {{ source('raw', 'events') }} e,
        lateral flatten(input => parse_json(e.tags)) f
    """,
    "shop_dbt/models/marts/customer_orders.sql": """
        select
            initcap(c.name) as customer_name,
            upper(c.country) as country,
            count(o.order_id) as orders,
            sum(o.amount) as revenue,
            div0(sum(o.amount), count(o.order_id)) as avg_order,
            iff(count(o.order_id) > 1, 'repeat', 'single') as segment
        from {{ ref('customers') }} c
        left join {{ ref('stg_orders') }} o on o.customer_id = c.id
        group by all
    """,
    "shop_dbt/models/marts/latest_orders.sql": """
        {{ config(materialized='incremental', unique_key='order_id', incremental_strategy='merge') }}
        select order_id, customer_id, status, amount
        from {{ ref('stg_orders') }}
        {% if is_incremental() %}
        where order_id > (select coalesce(max(order_id), 0) from {{ this }})
        {% endif %}
        qualify row_number() over (partition by order_id order by amount desc) = 1
    """,
    "shop_dbt/models/marts/_marts.yml": """
        version: 2
        models:
          - name: customer_orders
            columns:
              - name: customer_name
                data_tests: [not_null, unique]
    """,
    "shop_dbt/snapshots/customers_snapshot.sql": """
        {% snapshot customers_snapshot %}
        {{ config(target_schema='SNAPSHOTS', unique_key='id', strategy='check', check_cols=['name', 'country']) }}
        select * from {{ ref('customers') }}
        {% endsnapshot %}
    """,
    "shop_dagster/__init__.py": "",
    "shop_dagster/definitions.py": """
        from pathlib import Path

        import dagster as dg
        from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
        from dagster_snowflake import SnowflakeResource

        project = DbtProject(project_dir=Path(__file__).parent.parent / "shop_dbt")


        @dg.asset(key=["raw", "orders"], group_name="landing")
        def raw_orders(snowflake: SnowflakeResource) -> dg.MaterializeResult:
            with snowflake.get_connection() as conn:
                cur = conn.cursor()
                cur.execute(
                    "create or replace table RAW.SHOP.ORDERS "
                    "(id int, customer_id int, status varchar, amount number(10, 2), payload varchar)"
                )
                cur.execute(
                    "insert into RAW.SHOP.ORDERS values "
                    "(1, 1, 'shipped', 10.5, '{\\"channel\\": \\"web\\"}'), "
                    "(2, 1, null, 20, '{\\"channel\\": \\"store\\"}'), "
                    "(3, 2, 'returned', null, '{\\"channel\\": \\"web\\"}')"
                )
            return dg.MaterializeResult(metadata={"dagster/row_count": 3})


        @dbt_assets(manifest=project.manifest_path, project=project)
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        @dg.asset(deps=[dg.AssetKey("customer_orders")], group_name="reporting")
        def revenue_report(snowflake: SnowflakeResource) -> dg.MaterializeResult:
            with snowflake.get_connection() as conn:
                rows = conn.cursor().execute(
                    "select country, sum(revenue) from ANALYTICS.PUBLIC.CUSTOMER_ORDERS group by country order by 1"
                ).fetchall()
            return dg.MaterializeResult(metadata={"dagster/row_count": len(rows)})


        defs = dg.Definitions(
            assets=[raw_orders, shop_dbt_assets, revenue_report],
            resources={
                "dbt": DbtCliResource(project_dir=project),
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
    """,
    "tests/conftest.py": """
        import pytest


        @pytest.fixture
        def dbt_assets_data():
            return {"raw.events": [{"id": 1, "tags": '["a", "b"]'}, {"id": 2, "tags": '["c"]'}]}
    """,
}

# Production-looking Snowflake credentials, as a developer's shell or a deploy job has them.
SNOWFLAKE_SECRETS = {
    "SNOWFLAKE_ACCOUNT": "acme-prod.eu-west-1",
    "SNOWFLAKE_USER": "DAGSTER_SVC",
    "SNOWFLAKE_PASSWORD": "hunter2-not-real",
    "SNOWFLAKE_DATABASE": "ANALYTICS",
}
