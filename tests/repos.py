"""Small user repos (dbt project + Dagster code) for pytester runs, as file dicts."""

from __future__ import annotations

import hashlib
import os
import subprocess
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


# Set to a file path, every nested pytest run (in-process or subprocess) appends one line to it:
# the suite's cost in nested sessions, counted across xdist workers.
NESTED_LOG_VARIABLE = "DBT_ASSETS_TESTS_NESTED_LOG"


def count_nested_run(kind: str) -> None:
    """Record one nested pytest run of ``kind`` when NESTED_LOG_VARIABLE names a file."""
    log = os.environ.get(NESTED_LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(kind + "\n")


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

    count_nested_run("subprocess")
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


# Installed in every Python process of the inner run (pytest and the dbt subprocesses) through
# PYTHONPATH: any TCP/UDP connection is recorded to a file and refused.
SOCKET_GUARD = """
    import os
    import socket

    _connect = socket.socket.connect

    def _guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            with open(os.environ["SOCKET_GUARD_LOG"], "a") as log:
                log.write(f"{os.getpid()} {address!r}\\n")
            raise ConnectionRefusedError(f"socket guard: no network in tests ({address!r})")
        return _connect(self, address)

    socket.socket.connect = _guarded
"""


PROD_PROFILES = """
    shop_prod:
      target: prod
      outputs:
        prod:
          type: postgres
          host: warehouse.invalid
          port: 5432
          user: etl
          password: secret
          dbname: prod
          schema: analytics
          threads: 4
        local:
          type: duckdb
          path: local_dev.duckdb
"""


def guarded_user_env(tmp_path: Path, profiles: str) -> tuple[dict[str, str], Path, Path]:
    """The environment of a fresh-interpreter run in which every TCP/UDP connection is refused
    and logged (SOCKET_GUARD), with a HOME holding the user's own ``~/.dbt/profiles.yml``.
    Returns the environment, the connections log and the home folder."""
    guard_dir = tmp_path / "guard"
    write_files(guard_dir, {"sitecustomize.py": SOCKET_GUARD})
    log = tmp_path / "connections.log"
    home = tmp_path / "home"
    write_files(home, {".dbt/profiles.yml": profiles})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(guard_dir), os.environ.get("PYTHONPATH", "")]),
        "SOCKET_GUARD_LOG": str(log),
        "HOME": str(home),
    }
    return env, log, home


DG_PYPROJECT = """
    [project]
    name = "shop_dg"
    version = "0.1.0"
    requires-python = ">=3.10,<3.14"
    dependencies = ["dagster", "dagster-dbt", "dbt-duckdb"]

    [build-system]
    requires = ["hatchling"]
    build-backend = "hatchling.build"

    [tool.dg]
    directory_type = "project"

    [tool.dg.project]
    root_module = "shop_dg"
    registry_modules = ["shop_dg.components.*"]
"""


DG_DEFINITIONS = """
    from pathlib import Path

    from dagster import definitions, load_from_defs_folder


    @definitions
    def defs():
        return load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


DBT_COMPONENT_YAML = """
    type: dagster_dbt.DbtProjectComponent

    attributes:
      project: '{{ context.project_root }}/shop'
"""


# A Python asset of the defs folder, downstream of a dbt model (the default translator's key).
SCORES_PY = """
    import dagster as dg


    @dg.asset(deps=[dg.AssetKey("customers")], group_name="ml")
    def customer_scores():
        return dg.MaterializeResult(metadata={"dagster/row_count": 3})
"""


# The package is installed in the project's virtualenv (`uv sync`): here, src/ on sys.path
# for the test modules that import it themselves.
INSTALLED_PACKAGE_CONFTEST = """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "src"))
"""


def dg_files(component_yaml: str = DBT_COMPONENT_YAML) -> dict[str, str]:
    return {
        **SHOP_DBT_FILES,
        "pyproject.toml": DG_PYPROJECT,
        "src/shop_dg/__init__.py": "",
        "src/shop_dg/definitions.py": DG_DEFINITIONS,
        "src/shop_dg/defs/__init__.py": "",
        "src/shop_dg/defs/shop_dbt/defs.yaml": component_yaml,
        "src/shop_dg/defs/scores.py": SCORES_PY,
        "conftest.py": INSTALLED_PACKAGE_CONFTEST,
    }


def tree(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


FINANCE_DBT_FILES: dict[str, str] = {
    "dbt/finance/dbt_project.yml": """
        name: finance
        profile: finance_prod
        models:
          finance:
            +materialized: table
    """,
    "dbt/finance/seeds/budgets.csv": """
        customer_id,budget
        1,10
        2,2
        3,8
    """,
    # shop's `orders` model, read as a source; the asset key ties it to shop's asset.
    "dbt/finance/models/sources.yml": """
        version: 2
        sources:
          - name: shop
            schema: "{{ target.schema }}"
            tables:
              - name: orders
                meta:
                  dagster:
                    asset_key: ["orders"]
    """,
    "dbt/finance/models/revenue.sql": """
        select o.customer_id, sum(o.amount) as revenue, b.budget
        from {{ source('shop', 'orders') }} o
        join {{ ref('budgets') }} b using (customer_id)
        group by o.customer_id, b.budget
    """,
    "dbt/finance/models/schema.yml": """
        version: 2
        models:
          - name: revenue
            columns:
              - name: customer_id
                data_tests: [unique]
    """,
}


def component_yaml(folder: str) -> str:
    return f"""
        type: dagster_dbt.DbtProjectComponent

        attributes:
          project: '{{{{ context.project_root }}}}/dbt/{folder}'
    """


def two_projects_files() -> dict[str, str]:
    return {
        **{"dbt/" + name: content for name, content in SHOP_DBT_FILES.items()},
        **FINANCE_DBT_FILES,
        "pyproject.toml": DG_PYPROJECT,
        "src/shop_dg/__init__.py": "",
        "src/shop_dg/definitions.py": DG_DEFINITIONS,
        "src/shop_dg/defs/__init__.py": "",
        "src/shop_dg/defs/shop_dbt/defs.yaml": component_yaml("shop"),
        "src/shop_dg/defs/finance_dbt/defs.yaml": component_yaml("finance"),
        "src/shop_dg/defs/scores.py": SCORES_PY,
        "conftest.py": INSTALLED_PACKAGE_CONFTEST,
    }


PLAIN_DEFINITIONS = """
    from pathlib import Path

    import dagster as dg
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    DBT = Path(__file__).parent.parent / "dbt"
    shop = DbtProject(project_dir=DBT / "shop")
    finance = DbtProject(project_dir=DBT / "finance")


    @dbt_assets(manifest=shop.manifest_path, project=shop)
    def shop_dbt_assets(context: dg.AssetExecutionContext, dbt_shop: DbtCliResource):
        yield from dbt_shop.cli(["build"], context=context).stream()


    @dbt_assets(manifest=finance.manifest_path, project=finance)
    def finance_dbt_assets(context: dg.AssetExecutionContext, dbt_finance: DbtCliResource):
        yield from dbt_finance.cli(["build"], context=context).stream()


    defs = dg.Definitions(
        assets=[shop_dbt_assets, finance_dbt_assets],
        resources={
            "dbt_shop": DbtCliResource(project_dir=shop),
            "dbt_finance": DbtCliResource(project_dir=finance),
        },
    )
"""


# A team's repository under git, for comparisons with a base revision.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Data Team",
    "GIT_AUTHOR_EMAIL": "data@example.com",
    "GIT_COMMITTER_NAME": "Data Team",
    "GIT_COMMITTER_EMAIL": "data@example.com",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return done.stdout


def checkout_state(repo: Path) -> str:
    """What a run must leave as it was: HEAD, the index, the stash, the status, and every file
    git sees (tracked or not ignored), byte for byte."""
    digest = hashlib.sha256()
    for part in (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "ls-files", "--stage"),
        git(repo, "stash", "list"),
        git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
    ):
        digest.update(part.encode())
    for name in sorted(git(repo, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()):
        digest.update(name.encode() + (repo / name).read_bytes())
    return digest.hexdigest()


def commit_new_repo(repo: Path, message: str) -> None:
    """``repo`` made a git repository on branch main, everything in it committed."""
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", f"--message={message}")


def edit(repo: Path, name: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in ``repo/name``, which must hold it."""
    path = repo / name
    text = path.read_text()
    assert old in text, f"{name} no longer holds {old!r}"
    path.write_text(text.replace(old, new))
