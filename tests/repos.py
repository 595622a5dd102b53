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
