"""End to end: ``dbt_assets_materialize`` runs the user's Definitions with real dbt, real
Dagster and real DuckDB, and reports what was built as plain values.

Each test writes a small user repo (the ``shop`` project plus files for the case at hand)
and runs pytest in it. Inner runs are in-process; each dbt step costs a few seconds (dbt
starts in a subprocess), so one inner test often holds several related asserts.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.repos import SHOP_INI, run_pytest, write_files

pytestmark = pytest.mark.e2e

SHOP_MARTS = [
    "acme/marts/customers",
    "acme/marts/orders",
    "acme/raw/raw_customers",
    "acme/raw/raw_orders",
    "acme/staging/stg_customers",
    "acme/staging/stg_orders",
]

# A user's own DuckDB resource (opens the file per use, closes it after), and Definitions
# with a Python asset downstream of a dbt model and one that produces a dbt source.
WAREHOUSE_FILES: dict[str, str] = {
    "shop_dagster/warehouse.py": """
        from contextlib import contextmanager

        import dagster as dg
        import duckdb


        class ShopWarehouse(dg.ConfigurableResource):
            path: str

            @contextmanager
            def connect(self):
                con = duckdb.connect(self.path)
                try:
                    yield con
                finally:
                    con.close()
    """,
    "shop_dagster/reporting.py": """
        import dagster as dg
        from dagster_dbt import DbtCliResource, get_asset_key_for_model

        from shop_dagster.definitions import project, shop_dbt_assets
        from shop_dagster.warehouse import ShopWarehouse


        @dg.asset(deps=[get_asset_key_for_model([shop_dbt_assets], "customers")])
        def customer_report(warehouse: ShopWarehouse):
            with warehouse.connect() as con:
                count = con.execute("select count(*) from main.customers").fetchone()[0]
                con.execute(
                    "create or replace table main.customer_report as "
                    "select name from main.customers where orders > 1"
                )
            return dg.MaterializeResult(metadata={"dagster/row_count": count})


        # Produces the dbt source ext.loyalty (key acme/raw/loyalty under the translator).
        # A plain `create table`: it fails if anything created the table before it.
        @dg.asset(key=["acme", "raw", "loyalty"])
        def loyalty(warehouse: ShopWarehouse):
            with warehouse.connect() as con:
                con.execute("create schema if not exists ext")
                con.execute("create table ext.loyalty as select range as member_id from range(8)")
            return dg.MaterializeResult(metadata={"dagster/row_count": 8})


        @dg.asset
        def exploding():
            raise ValueError("boom")


        defs = dg.Definitions(
            assets=[shop_dbt_assets, customer_report, loyalty, exploding],
            resources={
                "dbt": DbtCliResource(project_dir=project),
                "warehouse": ShopWarehouse(path="prod_warehouse.duckdb"),
            },
        )
    """,
    "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.reporting:defs"),
    "tests/conftest.py": """
        import pytest

        from shop_dagster.warehouse import ShopWarehouse


        @pytest.fixture
        def dbt_assets_resources(dbt_assets_project):
            return {"warehouse": ShopWarehouse(path=str(dbt_assets_project.duckdb_path))}
    """,
}

# An incremental model that appends every run, and a snapshot of stg_orders. The `factor`
# var changes the amounts, so a second run records new snapshot versions.
INCREMENTAL_FILES: dict[str, str] = {
    "shop/models/staging/stg_orders.sql": """
        select id as order_id, customer_id, amount * {{ var('factor', 1) }} as amount
        from {{ ref('raw_orders') }}
    """,
    "shop/models/marts/orders_log.sql": """
        {{ config(materialized='incremental') }}
        select order_id, amount from {{ ref('stg_orders') }}
    """,
    "shop/snapshots/orders_snapshot.yml": """
        snapshots:
          - name: orders_snapshot
            relation: ref('stg_orders')
            config:
              unique_key: order_id
              strategy: check
              check_cols: all
    """,
}


def joined(*parts: str) -> str:
    """File contents written in pieces, each indented its own way."""
    return "\n".join(textwrap.dedent(part).strip("\n") for part in parts) + "\n"


def run_inner(repo: pytest.Pytester, *args: str) -> pytest.RunResult:
    return repo.runpytest("-p", "no:cacheprovider", *args)


# Dagster and dbt selections, alone and together.
SELECTION_FILES: dict[str, str] = {
    "shop/models/marts/orders.sql": """
                {{ config(tags=['finance']) }}
                select * from {{ ref('stg_orders') }}
            """,
    "tests/test_select.py": f"""
                from dagster import AssetKey, AssetSelection

                MARTS = {SHOP_MARTS!r}


                def test_dbt_select_with_parents(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+customers +orders")
                    assert result.success
                    assert result.materialized == MARTS
                    assert result.row_counts["acme/marts/customers"] == 3
                    assert result.row_counts["acme/marts/orders"] == 4
                    assert result.checks == {{
                        "not_null_customers_customer_id": "passed",
                        "unique_customers_customer_id": "passed",
                        "unique_orders_order_id": "passed",
                    }}


                def test_dbt_select_tag_among_several_words(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select=["+tag:finance", "raw_customers"])
                    assert result.row_counts == {{
                        "acme/marts/orders": 4,
                        "acme/raw/raw_customers": 3,
                        "acme/raw/raw_orders": 4,
                        "acme/staging/stg_orders": 4,
                    }}


                def test_dagster_asset_selection(dbt_assets_materialize):
                    result = dbt_assets_materialize(AssetSelection.assets("customer_scores").upstream())
                    assert result.materialized == [
                        "acme/marts/customers", "acme/raw/raw_customers", "acme/raw/raw_orders",
                        "acme/staging/stg_customers", "acme/staging/stg_orders", "customer_scores"]
                    assert result.row_counts["customer_scores"] == 3


                def test_dagster_key_list(dbt_assets_materialize):
                    result = dbt_assets_materialize([AssetKey(["acme", "raw", "raw_orders"])])
                    assert result.row_counts == {{"acme/raw/raw_orders": 4}}


                def test_dagster_selection_string(dbt_assets_materialize):
                    result = dbt_assets_materialize('+key:"acme/staging/stg_customers"')
                    assert result.materialized == ["acme/raw/raw_customers", "acme/staging/stg_customers"]


                def test_both_take_the_union(dbt_assets_materialize):
                    result = dbt_assets_materialize(["customer_scores"], dbt_select="+orders")
                    assert result.materialized == [
                        "acme/marts/orders", "acme/raw/raw_orders", "acme/staging/stg_orders", "customer_scores"]
                    assert result.checks == {{"unique_orders_order_id": "passed"}}
            """,
}


def test_row_counts_of_every_relation_built(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **INCREMENTAL_FILES,
            "tests/test_counts.py": """
                def test_counts(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize()
                    assert result.success
                    assert result.row_counts == {
                        "acme/marts/customers": 3,       # table
                        "acme/marts/orders": 4,
                        "acme/marts/orders_log": 4,      # incremental
                        "acme/raw/orders_snapshot": 4,   # snapshot
                        "acme/raw/raw_customers": 3,     # seed
                        "acme/raw/raw_orders": 4,
                        "acme/staging/stg_customers": 3, # view
                        "acme/staging/stg_orders": 4,
                        "customer_scores": 3,            # Python asset's dagster/row_count
                    }
                    assert result.materialized == sorted(result.row_counts)
                    assert dbt_assets_project.query(
                        "select table_name, table_type from information_schema.tables "
                        "where table_name in ('stg_orders', 'orders_log', 'orders_snapshot') order by 1"
                    ) == [("orders_log", "BASE TABLE"), ("orders_snapshot", "BASE TABLE"), ("stg_orders", "VIEW")]
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=1)


def test_dagster_dbt_adapter_is_built_only_for_a_body_that_reads_it(shop_repo: pytest.Pytester) -> None:
    # dagster-dbt builds an in-process dbt adapter (importing dbt, parsing every macro) on
    # each cli() call, before dbt starts; only fetch_row_counts() and friends use it. A
    # counting wrapper around dagster-dbt's own builder shows when it runs.
    write_files(
        shop_repo.path,
        {
            "adapter_builds.py": """
                from dagster_dbt import DbtCliResource

                BUILT = []
                _build = DbtCliResource._initialize_dbt_core_adapter


                def _counted(self, args):
                    adapter = _build(self, args)
                    BUILT.append(type(adapter).__name__)
                    return adapter


                DbtCliResource._initialize_dbt_core_adapter = _counted
            """,
            "tests/conftest.py": """
                import adapter_builds  # before the plugin's resources call dagster-dbt


                def pytest_addoption(parser):
                    parser.addoption("--fetch", action="store_true")
            """,
            "tests/test_adapter.py": """
                import adapter_builds


                def row_count_metadata(result):
                    return {
                        event.materialization.asset_key.to_user_string(): event.materialization.metadata.get(
                            "dagster/row_count"
                        )
                        for event in result.result.get_asset_materialization_events()
                    }


                def test_adapter(dbt_assets_materialize, request):
                    result = dbt_assets_materialize(dbt_select="+customers")
                    again = dbt_assets_materialize(dbt_select="+customers")
                    assert result.success and again.success
                    assert result.row_counts["acme/marts/customers"] == 3
                    if request.config.getoption("--fetch"):
                        # Built once, when fetch_row_counts() first read it; its counts arrive.
                        assert adapter_builds.BUILT == ["DuckDBAdapter"]
                        assert row_count_metadata(again)["acme/marts/customers"].value == 3
                    else:
                        assert adapter_builds.BUILT == []
            """,
        },
    )
    # A fresh interpreter per run: the wrapper stays out of this process's dagster-dbt.
    plain = run_pytest(shop_repo.path)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    definitions = shop_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(
        definitions.read_text().replace(
            'yield from dbt.cli(["build"], context=context).stream()',
            'yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()',
        )
    )
    fetching = run_pytest(shop_repo.path, "--fetch")
    assert fetching.returncode == 0, fetching.stdout + fetching.stderr


# Each test starts from an empty database; calls within a test share it (an incremental
# model and a snapshot grow on the second call).
FRESH_FILES: dict[str, str] = {
    **INCREMENTAL_FILES,
    "tests/test_fresh.py": """
                SEEN_PATHS = []


                def test_second_call_extends_the_first(dbt_assets_materialize, dbt_assets_project):
                    SEEN_PATHS.append(dbt_assets_project.duckdb_path)
                    first = dbt_assets_materialize(dbt_select="+orders_log +orders_snapshot")
                    assert first.row_counts["acme/marts/orders_log"] == 4
                    assert first.row_counts["acme/raw/orders_snapshot"] == 4

                    # raw_orders is not selected: the view reads the seed the first call built.
                    second = dbt_assets_materialize(
                        dbt_select="stg_orders orders_log orders_snapshot", vars={"factor": 2})
                    assert second.materialized == [
                        "acme/marts/orders_log", "acme/raw/orders_snapshot", "acme/staging/stg_orders"]
                    assert second.row_counts["acme/marts/orders_log"] == 8
                    assert second.row_counts["acme/raw/orders_snapshot"] == 8
                    assert dbt_assets_project.query(
                        "select sum(amount) from main.orders_snapshot where dbt_valid_to is null"
                    ) == [(48,)]


                def test_next_test_starts_empty(dbt_assets_materialize, dbt_assets_project):
                    assert dbt_assets_project.duckdb_path == SEEN_PATHS[0]
                    result = dbt_assets_materialize(dbt_select="+orders_log")
                    assert result.row_counts["acme/marts/orders_log"] == 4
                    assert dbt_assets_project.query(
                        "select table_name from information_schema.tables order by 1"
                    ) == [("orders_log",), ("raw_orders",), ("stg_orders",)]
            """,
}


# The marker supplies defaults; call arguments win, vars={} included.
VARS_FILES: dict[str, str] = {
    "shop/models/marts/big_orders.sql": """
                select * from {{ ref('stg_orders') }} where amount >= {{ var('min_amount', 0) }}
            """,
    "shop/models/marts/store_list.sql": "select * from {{ source('ext', 'stores') }}",
    "shop/models/marts/sources.yml": """
                version: 2
                sources:
                  - name: ext
                    tables:
                      - name: stores
            """,
    "tests/test_vars.py": """
                import pytest


                MARKER = pytest.mark.dbt_assets(
                    select=["acme/raw/raw_customers"],
                    dbt_select="+big_orders store_list",
                    vars={"min_amount": 5},
                    data={"ext.stores": [{"id": 1}, {"id": 2}]},
                )


                @MARKER
                def test_marker_supplies_defaults(dbt_assets_materialize):
                    result = dbt_assets_materialize()
                    assert result.row_counts == {
                        "acme/marts/big_orders": 3,
                        "acme/marts/store_list": 2,
                        "acme/raw/raw_customers": 3,
                        "acme/raw/raw_orders": 4,
                        "acme/staging/stg_orders": 4,
                    }


                @MARKER
                def test_call_arguments_win(dbt_assets_materialize):
                    # A selection in the call replaces both of the marker's; vars replace its vars.
                    result = dbt_assets_materialize(dbt_select="+big_orders", vars={"min_amount": 8})
                    assert result.row_counts == {
                        "acme/marts/big_orders": 1, "acme/raw/raw_orders": 4, "acme/staging/stg_orders": 4}
                    # Same database, no vars at all: the model's default applies again.
                    again = dbt_assets_materialize(dbt_select="big_orders", vars={})
                    assert again.row_counts == {"acme/marts/big_orders": 4}
            """,
}


def test_user_resource_points_at_the_test_database_and_python_asset_exceptions(shop_repo: pytest.Pytester) -> None:
    """The user's own resource reaches the test database; a Python asset's exception is reported
    or raised (test_boom.py::test_raises fails on purpose). One repo, one session."""
    write_files(
        shop_repo.path,
        {
            **WAREHOUSE_FILES,
            "tests/test_resources.py": """
                from pathlib import Path

                import duckdb

                from shop_dagster.warehouse import ShopWarehouse


                def test_python_asset_reads_the_dbt_table(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(["customer_report"], dbt_select="+customers")
                    assert result.success
                    assert result.row_counts["customer_report"] == 3
                    assert result.row_counts["acme/marts/customers"] == 3
                    assert dbt_assets_project.query("select name from main.customer_report") == [("Ann",)]
                    # Once more without dbt: the file is free for the resource, the plugin, and us.
                    assert dbt_assets_materialize(["customer_report"]).row_counts == {"customer_report": 3}
                    with duckdb.connect(str(dbt_assets_project.duckdb_path)) as con:
                        assert con.execute("select count(*) from main.customers").fetchone() == (3,)
                    assert not Path("prod_warehouse.duckdb").exists()


                def test_call_resources_win(dbt_assets_materialize, tmp_path):
                    other = tmp_path / "other.duckdb"
                    with duckdb.connect(str(other)) as con:
                        con.execute(
                            "create table main.customers as "
                            "select range as customer_id, 'Zed' as name, 2 as orders from range(7)")
                    result = dbt_assets_materialize(
                        ["customer_report"], resources={"warehouse": ShopWarehouse(path=str(other))})
                    assert result.row_counts == {"customer_report": 7}
            """,
            "tests/test_boom.py": """
                def test_reports(dbt_assets_materialize):
                    result = dbt_assets_materialize(["exploding", "acme/raw/raw_customers"], raise_on_error=False)
                    assert result.success is False
                    assert result.materialized == ["acme/raw/raw_customers"]
                    assert result.failures == ["step exploding raised ValueError: boom"]


                def test_raises(dbt_assets_materialize):  # fails, on purpose
                    dbt_assets_materialize(["exploding"])
            """,
        },
    )
    result = run_inner(shop_repo)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED tests/test_boom.py::test_raises - *"])
    result.stdout.fnmatch_lines(
        ["*MaterializationError: Materialization failed:*", "*- step exploding raised ValueError: boom"]
    )


def test_source_data_precedence(shop_repo: pytest.Pytester) -> None:
    import duckdb

    tables = ["stores", "regions", "suppliers", "events", "visits", "promos", "loyalty"]
    write_files(
        shop_repo.path,
        {
            **WAREHOUSE_FILES,
            "pyproject.toml": joined(WAREHOUSE_FILES["pyproject.toml"], 'dbt_assets_data_dir = "data"'),
            "shop/models/ext/sources.yml": """
                version: 2
                sources:
                  - name: ext
                    tables:
                      - name: stores      # marker rows, over the fixture's CSV and the data dir
                      - name: regions     # the fixture's CSV, over the data dir
                      - name: suppliers   # data dir CSV, over the declared columns
                        columns:
                          - name: id
                            data_type: bigint
                      - name: events      # data dir parquet
                      - name: visits      # data dir JSON
                      - name: promos      # declared columns only: an empty typed table
                        columns:
                          - name: code
                            data_type: varchar
                          - name: discount
                            data_type: decimal(5,2)
                      - name: loyalty     # produced by the Dagster asset acme/raw/loyalty
            """,
            **{
                f"shop/models/ext/ext_{table}.sql": f"select * from {{{{ source('ext', '{table}') }}}}"
                for table in tables
            },
            "tests/stores.csv": "id,name\n" + "".join(f"{i},fixture\n" for i in range(5)),
            "tests/regions.csv": "id,name\n1,North\n2,South\n3,East\n",
            "data/ext/stores.csv": "id,name\n" + "".join(f"{i},data_dir\n" for i in range(7)),
            "data/ext/regions.csv": "id,name\n9,data_dir\n",
            "data/ext/suppliers.csv": "id,name\n1,a\n2,b\n3,c\n4,d\n",
            "data/ext/visits.json": '[{"id": 1, "page": "/"}, {"id": 2, "page": "/shop"}, {"id": 3, "page": "/"}]',
            "tests/conftest.py": joined(
                WAREHOUSE_FILES["tests/conftest.py"],
                """

                @pytest.fixture
                def dbt_assets_data():
                    from pathlib import Path

                    here = Path(__file__).parent
                    return {"ext.stores": str(here / "stores.csv"), "ext.regions": str(here / "regions.csv")}
            """,
            ),
            "tests/test_sources.py": """
                import pytest


                @pytest.mark.dbt_assets(data={"ext.stores": [{"id": 1, "name": "North"}, {"id": 2, "name": "South"}]})
                def test_sources(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(["acme/raw/loyalty"], dbt_select="path:models/ext")
                    assert result.row_counts == {
                        "acme/ext/ext_events": 6,
                        "acme/ext/ext_loyalty": 8,
                        "acme/ext/ext_promos": 0,
                        "acme/ext/ext_regions": 3,
                        "acme/ext/ext_stores": 2,
                        "acme/ext/ext_suppliers": 4,
                        "acme/ext/ext_visits": 3,
                        "acme/raw/loyalty": 8,
                    }
                    assert dbt_assets_project.query("select name from main.ext_stores order by id") == [
                        ("North",), ("South",)]
                    assert result.columns["acme/ext/ext_promos"] == {"code": "VARCHAR", "discount": "DECIMAL(5,2)"}
                    assert result.columns["acme/ext/ext_suppliers"]["id"] == "BIGINT"
                    assert result.columns["acme/ext/ext_events"] == {"event_id": "BIGINT", "kind": "VARCHAR"}
            """,
        },
    )
    parquet = shop_repo.path / "data/ext/events.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select range as event_id, 'click' as kind from range(6)) to '{parquet}' (format parquet)")
    run_inner(shop_repo).assert_outcomes(passed=1)


# A model's SQL error: raised (test_raises fails on purpose) or reported with its compiled SQL.
SQL_ERROR_FILES: dict[str, str] = {
    "shop/models/marts/broken.sql": "select customer_id,, name from {{ ref('stg_customers') }}",
    "tests/test_broken.py": """
                from pathlib import Path


                def test_raises(dbt_assets_materialize):  # fails, on purpose
                    dbt_assets_materialize(dbt_select="+broken")


                def test_reports(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+broken", raise_on_error=False)
                    assert result.success is False
                    assert "acme/marts/broken" not in result.materialized
                    assert result.row_counts["acme/staging/stg_customers"] == 3
                    [failure] = result.failures
                    assert failure.startswith("dbt model broken (models/marts/broken.sql) failed:")
                    assert "syntax error" in failure
                    compiled = Path(failure.split("compiled SQL: ")[1].strip())
                    assert "customer_id,, name" in compiled.read_text()
            """,
}


def test_dbt_test_results(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/dup_orders.sql": "select customer_id from {{ ref('stg_orders') }}",
            "shop/models/marts/named_customers.sql": (
                "select name from {{ ref('stg_customers') }} union all select null"
            ),
            "shop/models/marts/more.yml": """
                version: 2
                models:
                  - name: dup_orders
                    columns:
                      - name: customer_id
                        data_tests:
                          - unique
                          - relationships:
                              arguments: {to: ref('customers'), field: customer_id}
                  - name: named_customers
                    columns:
                      - name: name
                        data_tests:
                          - not_null:
                              config:
                                severity: warn
            """,
            "tests/test_checks.py": """
                RELATIONSHIPS = "relationships_dup_orders_customer_id__customer_id__ref_customers_"


                def test_failing_test(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+dup_orders", raise_on_error=False)
                    assert result.success is False
                    assert result.row_counts["acme/marts/dup_orders"] == 4
                    # dbt selects tests eagerly, as under dagster-dbt: the relationships test runs
                    # although customers is not selected (nor built), and errors.
                    assert result.checks == {RELATIONSHIPS: "failed", "unique_dup_orders_customer_id": "failed"}
                    unique, relationships = sorted(result.failures, key=lambda line: "relationships" in line)
                    assert unique.startswith("dbt test unique_dup_orders_customer_id on model dup_orders failed: ")
                    assert relationships.startswith(f"dbt test {RELATIONSHIPS} on model dup_orders errored: ")
                    assert "customers does not exist" in relationships


                def test_warning_test(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+named_customers")
                    assert result.success is True
                    assert result.failures == []
                    assert result.checks == {"not_null_named_customers_name": "warn"}
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=2)


# Selections that match nothing or do not parse: SelectionError before anything runs.
SELECTION_ERROR_FILES: dict[str, str] = {
    "tests/test_selection.py": """
                import pytest

                from pytest_dbt_assets.errors import SelectionError


                @pytest.mark.parametrize(
                    ("kwargs", "expected"),
                    [
                        ({"select": "group:nope"}, "select='group:nope' matches no materializable asset"),
                        ({"select": ["acme/marts/nope"]}, "select=['acme/marts/nope'] is not a valid Dagster"),
                        ({"dbt_select": "nope_model"}, "dbt_select='nope_model' matches no dbt asset"),
                        ({"dbt_select": ["tag:nope", "nope_model"]}, "dbt_select='tag:nope nope_model' matches no"),
                        ({"select": ["customer_scores"], "dbt_select": "tag:nope"}, "dbt_select='tag:nope' matches no"),
                        (
                            {"dbt_select": "nosuchmethod:orders"},
                            "dbt_select='nosuchmethod:orders' is not a valid dbt selection: "
                            "'nosuchmethod' is not a valid method name. dbt_select takes dbt's --select syntax",
                        ),
                    ],
                )
                def test_selection_error(dbt_assets_materialize, dbt_assets_project, kwargs, expected):
                    with pytest.raises(SelectionError) as excinfo:
                        dbt_assets_materialize(**kwargs)
                    assert expected in str(excinfo.value)
                    assert not dbt_assets_project.duckdb_path.exists()  # nothing ran
            """,
}


def test_selections_vars_fresh_databases_and_errors(shop_repo: pytest.Pytester) -> None:
    """Five cases on one repo, in one session: their files do not touch each other's models."""
    write_files(
        shop_repo.path,
        {**SELECTION_FILES, **FRESH_FILES, **VARS_FILES, **SQL_ERROR_FILES, **SELECTION_ERROR_FILES},
    )
    result = run_inner(shop_repo)
    result.assert_outcomes(passed=17, failed=1)
    result.stdout.fnmatch_lines(["FAILED tests/test_broken.py::test_raises - *"])
    result.stdout.fnmatch_lines(
        [
            "*MaterializationError: Materialization failed:*",
            "*dbt model broken (models/marts/broken.sql) failed:*",
            "*syntax error at or near*",
            "*compiled SQL: *compiled/shop/models/marts/broken.sql*",
        ]
    )


def test_source_errors(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "pyproject.toml": joined(SHOP_INI, 'dbt_assets_data_dir = "data"'),
            "shop/models/ext/sources.yml": """
                version: 2
                sources:
                  - name: ext
                    tables:
                      - name: nothing
                      - name: latin
            """,
            "shop/models/ext/ext_nothing.sql": "select * from {{ source('ext', 'nothing') }}",
            "shop/models/ext/ext_latin.sql": "select * from {{ source('ext', 'latin') }}",
            "tests/test_sources.py": """
                from pathlib import Path

                import pytest

                from pytest_dbt_assets.errors import SourceDataError


                def test_no_data(dbt_assets_materialize):
                    with pytest.raises(SourceDataError) as excinfo:
                        dbt_assets_materialize(dbt_select="ext_nothing")
                    message = str(excinfo.value)
                    assert message.startswith("dbt source ext.nothing has no data")
                    assert "(1) rows from the test: @pytest.mark.dbt_assets(data={'ext.nothing': [...]})" in message
                    assert "the dbt_assets_data fixture" in message
                    assert "(2) a file ext/nothing.csv (or .parquet, .json) in the folder named by " in message
                    assert "dbt_assets_data_dir" in message
                    assert "(3) `columns:` with `data_type:`" in message


                def test_not_utf8(dbt_assets_materialize):
                    with pytest.raises(SourceDataError) as excinfo:
                        dbt_assets_materialize(dbt_select="ext_latin")
                    path = Path("data/ext/latin.csv").resolve()
                    assert str(excinfo.value) == (
                        f"Could not load data for source ext.latin from {path}: the file is not UTF-8 "
                        "encoded (byte 0xe9 on line 2). Save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
                    )
            """,
        },
    )
    (shop_repo.path / "data/ext").mkdir(parents=True)
    (shop_repo.path / "data/ext/latin.csv").write_bytes("id,name\n1,José\n2,Zoë\n".encode("latin-1"))
    run_inner(shop_repo).assert_outcomes(passed=2)


RUNS = 5  # materializations in each of two sessions: every one writes, or compares with, the same bytes


def test_summary_snapshot_is_byte_identical_across_runs(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **INCREMENTAL_FILES,
            # Two failures in one dbt invocation (4 threads), plus everything that passes.
            "shop/models/marts/broken.sql": "select customer_id,, name from {{ ref('stg_customers') }}",
            "shop/models/marts/dup_orders.sql": "select customer_id from {{ ref('stg_orders') }}",
            "shop/models/marts/more.yml": """
                version: 2
                models:
                  - name: dup_orders
                    columns:
                      - name: customer_id
                        data_tests: [unique]
            """,
            "tests/test_snap.py": f"""
                import pytest


                @pytest.mark.parametrize("run", range({RUNS}))
                def test_snap(dbt_assets_materialize, dbt_assets_snapshot, run):
                    result = dbt_assets_materialize(raise_on_error=False)
                    assert result.summary(columns=True) == dbt_assets_snapshot
            """,
        },
    )
    folder = shop_repo.path / "tests/__snapshots__/test_snap"
    run_inner(shop_repo, "--snapshot-update").assert_outcomes(passed=RUNS)
    written = {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))}
    assert sorted(written) == [f"test_snap[{run}].yaml" for run in range(RUNS)]
    first = written["test_snap[0].yaml"]
    for expected in (
        "acme/raw/orders_snapshot:",
        "unique_customers_customer_id: passed",
        "unique_dup_orders_customer_id: failed",
        "dbt model broken (models/marts/broken.sql)",
    ):
        assert expected.encode() in first
    # No temp paths (the compiled SQL path is left out); inner runs' basetemp is a sibling.
    assert str(shop_repo.path.parent).encode() not in first
    assert set(written.values()) == {first}  # each materialization of the session wrote the same bytes
    # A new session: each of its materializations matches them, and nothing is rewritten.
    run_inner(shop_repo).assert_outcomes(passed=RUNS)
    assert {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml"))} == written
