"""End to end: what a user sees when a materialization meets the idioms of real dbt projects
(sources declared in SQL comments, same-named tests, sources pinned to a database, eager
indirect selection, failing tests, hooks, partitions), with real dbt, Dagster and DuckDB.

Each test writes a small user repo (the ``shop`` project plus the files for the case) and
runs pytest in it; each inner test holds the related asserts of one case.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.repos import SHOP_DAGSTER_FILES, SHOP_INI, write_files

pytestmark = pytest.mark.e2e


def run_inner(repo: pytest.Pytester, *args: str) -> pytest.RunResult:
    return repo.runpytest("-p", "no:cacheprovider", *args)


def joined(*parts: str) -> str:
    """File contents written in pieces, each indented its own way."""
    return "\n".join(textwrap.dedent(part).strip("\n") for part in parts) + "\n"


# dagster-dbt's own idiom to declare a dependency on a Dagster asset: a source() in a SQL
# comment; an ephemeral `select 1` model that names a source it never queries; and a source
# that dbt does read, with no data anywhere.
LAZY_SOURCE_FILES: dict[str, str] = {
    "shop/models/ext/sources.yml": """
        version: 2
        sources:
          - name: dagster
            tables:
              - name: orders_feed
          - name: crm
            tables:
              - name: unused_accounts
              - name: contacts
    """,
    "shop/models/ext/feed_orders.sql": """
        -- {{ source('dagster', 'orders_feed') }}
        select * from {{ ref('orders') }}
    """,
    "shop/models/ext/constant.sql": """
        {{ config(materialized='ephemeral') }}
        {% if false %} select * from {{ source('crm', 'unused_accounts') }} {% endif %}
        select 1 as one
    """,
    "shop/models/ext/uses_constant.sql": "select * from {{ ref('constant') }}",
    "shop/models/ext/ext_contacts.sql": "select * from {{ source('crm', 'contacts') }}",
}


def test_sources_are_created_only_when_dbt_reads_them(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **LAZY_SOURCE_FILES,
            "tests/test_lazy.py": """
                import pytest

                from pytest_dbt_assets.errors import MaterializationError, SourceDataError


                def test_comment_and_unqueried_sources(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="+feed_orders +uses_constant")
                    assert result.success, result.failures
                    assert result.row_counts["acme/ext/feed_orders"] == 4
                    assert result.row_counts["acme/ext/uses_constant"] == 1
                    # Nothing to create them from: the plugin left them alone, as dbt did.
                    assert dbt_assets_project.query(
                        "select count(*) from information_schema.tables where table_schema in ('dagster', 'crm')"
                    ) == [(0,)]


                def test_read_source_without_data(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="ext_contacts", raise_on_error=False)
                    assert not result.success
                    hint = result.failures[0]
                    assert hint.startswith("dbt source crm.contacts has no data: dbt reads it")
                    assert "(1) rows from the test: @pytest.mark.dbt_assets(data={'crm.contacts': [...]})" in hint
                    assert "(2) a file crm/contacts.csv (or .parquet, .json)" in hint
                    assert "(3) `columns:` with `data_type:`" in hint
                    assert 'Table with name "crm.contacts" does not exist' in result.failures[1]
                    with pytest.raises(SourceDataError) as excinfo:
                        dbt_assets_materialize(dbt_select="ext_contacts")
                    assert isinstance(excinfo.value, MaterializationError)
                    assert str(excinfo.value).startswith("dbt source crm.contacts has no data")


                @pytest.mark.dbt_assets(data={"crm.contacts": [{"id": 1}, {"id": 2}]})
                def test_rows_still_win(dbt_assets_materialize):
                    assert dbt_assets_materialize(dbt_select="ext_contacts").row_counts == {"acme/ext/ext_contacts": 2}
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=3)


# dbt-expectations style: two tests with the same `name:` on one model.
SAME_NAMED_TESTS_SCHEMA = """
    version: 2
    models:
      - name: orders
        columns:
          - name: order_id
            data_tests:
              - not_null:
                  name: orders_values_present
          - name: amount
            data_tests:
              - not_null:
                  name: orders_values_present
"""


def test_same_named_tests_report_the_step_failure_not_a_lock(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/schema.yml": SAME_NAMED_TESTS_SCHEMA,
            "tests/test_same_names.py": """
                import pytest

                from pytest_dbt_assets.errors import MaterializationError


                def test_failure_line(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    assert not result.success
                    assert len(result.failures) == 1, result.failures
                    line = result.failures[0]
                    assert line.startswith(
                        "dbt tests share the name orders_values_present on acme/marts/orders: test.shop."
                    )
                    assert "on column order_id (models/marts/schema.yml)" in line
                    assert "on column amount (models/marts/schema.yml)" in line
                    assert "returned an output ... multiple times" in line
                    assert line.endswith("Give each test a distinct `name:` in models/marts/schema.yml.")
                    # dbt is stopped before the plugin reads the database: it can be opened now.
                    assert dbt_assets_project.query("select 1") == [(1,)]


                def test_raises_the_step_failure(dbt_assets_materialize):
                    with pytest.raises(MaterializationError) as excinfo:
                        dbt_assets_materialize(dbt_select="+orders")
                    assert "dbt tests share the name orders_values_present" in str(excinfo.value)
                    assert "lock" not in str(excinfo.value).lower()
            """,
        },
    )
    result = run_inner(shop_repo)
    result.assert_outcomes(passed=2)
    assert "Could not set lock" not in result.stdout.str()


def test_source_pinned_to_a_database(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/crm/sources.yml": """
                version: 2
                sources:
                  - name: crm
                    database: raw_warehouse
                    schema: salesforce
                    tables:
                      - name: accounts
                      - name: regions
                        columns:
                          - name: code
                            data_type: varchar
            """,
            "shop/models/crm/crm_accounts.sql": "select * from {{ source('crm', 'accounts') }}",
            "shop/models/crm/crm_regions.sql": "select * from {{ source('crm', 'regions') }}",
            "tests/test_pinned.py": """
                import duckdb
                import pytest


                @pytest.mark.dbt_assets(data={"crm.accounts": [{"id": 1}, {"id": 2}, {"id": 3}]})
                def test_pinned(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="path:models/crm")
                    assert result.success, result.failures
                    assert result.row_counts == {"acme/crm/crm_accounts": 3, "acme/crm/crm_regions": 0}
                    assert result.columns["acme/crm/crm_regions"] == {"code": "VARCHAR"}
                    path = dbt_assets_project.attached_databases["raw_warehouse"]
                    assert path.parent.parent == dbt_assets_project.duckdb_path.parent
                    with duckdb.connect(str(path), read_only=True) as con:
                        assert con.execute("select count(*) from salesforce.accounts").fetchone() == (3,)
                    assert dbt_assets_project.query("select count(*) from raw_warehouse.salesforce.accounts") == [(3,)]


                def test_reset_per_test(dbt_assets_materialize, dbt_assets_project):
                    assert not dbt_assets_project.attached_databases["raw_warehouse"].exists()
                    result = dbt_assets_materialize(dbt_select="crm_regions")
                    assert result.row_counts == {"acme/crm/crm_regions": 0}
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=2)
    # The user's production YAML is unchanged.
    assert "database: raw_warehouse" in (shop_repo.path / "shop/models/crm/sources.yml").read_text()


RELATIONSHIPS_SCHEMA = """
    version: 2
    models:
      - name: customers
        columns:
          - name: customer_id
            data_tests: [unique]
      - name: orders
        columns:
          - name: customer_id
            data_tests:
              - relationships:
                  arguments:
                    to: ref('customers')
                    field: customer_id
"""


def test_indirect_selection(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/schema.yml": RELATIONSHIPS_SCHEMA,
            "tests/test_indirect.py": """
                import pytest

                from pytest_dbt_assets.errors import SelectionError


                def test_eager_by_default(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    assert not result.success
                    [line] = result.failures
                    assert line.startswith("dbt test relationships_orders_customer_id__customer_id__ref_customers_ on ")
                    assert "Table with name customers does not exist" in line
                    assert "The test reads model customers, which this run did not build" in line
                    assert "Select customers too (e.g. dbt_select='... +customers')" in line
                    assert "or pass indirect_selection='cautious'" in line


                @pytest.mark.dbt_assets(indirect_selection="cautious")
                def test_cautious_from_the_marker(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+orders")
                    assert result.success
                    assert result.checks["relationships_orders_customer_id__customer_id__ref_customers_"] == "skipped"


                @pytest.mark.dbt_assets(indirect_selection="cautious")
                def test_call_argument_wins(dbt_assets_materialize):
                    result = dbt_assets_materialize(
                        dbt_select="+orders", indirect_selection="eager", raise_on_error=False
                    )
                    assert not result.success


                def test_bad_value(dbt_assets_materialize):
                    with pytest.raises(SelectionError) as excinfo:
                        dbt_assets_materialize(dbt_select="+orders", indirect_selection="careful")
                    assert str(excinfo.value).startswith(
                        "indirect_selection='careful' is not one of dbt's values: 'eager', 'cautious', 'buildable', "
                        "'empty'."
                    )
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=4)


def test_failing_rows_in_failures_and_snapshot(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/schema.yml": """
                version: 2
                models:
                  - name: orders
                    columns:
                      - name: customer_id
                        data_tests:
                          - accepted_values:
                              arguments:
                                values: [1]
            """,
            # A singular test with more failing rows than are shown.
            "shop/tests/assert_orders_are_unique_per_copy.sql": """
                select o.order_id, c.range as copy
                from {{ ref('orders') }} o cross join range(2) c
            """,
            "tests/test_rows.py": """
                def test_rows(dbt_assets_materialize, dbt_assets_snapshot):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    failures = sorted(result.failures)
                    assert failures[0] == (
                        "dbt test accepted_values_orders_customer_id__1 on model orders failed: Got 2 results, "
                        "configured to fail if != 0\\n"
                        "  failing rows (2):\\n"
                        "    value_field=2, n_records=1\\n"
                        "    value_field=3, n_records=1"
                    )
                    assert failures[1] == (
                        "dbt test assert_orders_are_unique_per_copy on model orders failed: Got 8 results, "
                        "configured to fail if != 0\\n"
                        "  failing rows (first 5 of 8):\\n"
                        "    order_id=10, copy=0\\n"
                        "    order_id=10, copy=1\\n"
                        "    order_id=11, copy=0\\n"
                        "    order_id=11, copy=1\\n"
                        "    order_id=12, copy=0"
                    )
                    assert result.summary() == dbt_assets_snapshot
            """,
        },
    )
    run_inner(shop_repo, "--snapshot-update").assert_outcomes(passed=1)
    [snapshot] = (shop_repo.path / "tests/__snapshots__").rglob("*.yaml")
    text = snapshot.read_text()
    assert "failing rows (first 5 of 8)" in text
    assert "value_field=3, n_records=1" in text
    assert "/tmp" not in text and "pytest-of" not in text
    run_inner(shop_repo).assert_outcomes(passed=1)  # the same rows, in the same order


def test_hook_failure_names_the_hook_and_macro(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/dbt_project.yml": """
                name: shop
                profile: shop_prod
                on-run-start:
                  - "{{ record_run_start() }}"
                models:
                  shop:
                    staging:
                      +materialized: view
                    marts:
                      +materialized: table
            """,
            "shop/macros/audit.sql": """
                {% macro record_run_start() %}
                  insert into run_log select current_timestamp
                {% endmacro %}
            """,
            "tests/test_hook.py": """
                def test_hook(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    assert not result.success
                    [line] = result.failures
                    assert line.startswith(
                        "dbt on-run-start hook #1 `{{ record_run_start() }}` (dbt_project.yml), calling macro "
                        "record_run_start (macros/audit.sql) failed:"
                    ), line
                    assert "run_log does not exist" in line
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=1)


def test_hook_that_stops_dbt_before_any_node_is_named_with_its_fix(shop_repo: pytest.Pytester) -> None:
    """A macro that run_query()s a table only production has stops the whole dbt command
    ("Encountered an error") and dbt writes no run_results.json: the failure still names the
    hook and its macro, with the fix, not dagster-dbt's command line and exit code."""
    write_files(
        shop_repo.path,
        {
            "shop/dbt_project.yml": """
                name: shop
                profile: shop_prod
                on-run-start:
                  - "{{ audit_start() }}"
            """,
            "shop/macros/audit.sql": """
                {% macro audit_start() %}
                  {% if execute %}
                    {% set rows = run_query("select max(run_id) from audit.runs") %}
                  {% endif %}
                  select 1
                {% endmacro %}
            """,
            "tests/test_hook.py": """
                def test_hook(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    [line] = result.failures
                    assert line.startswith(
                        "dbt on-run-start hook #1 `{{ audit_start() }}` (dbt_project.yml), calling macro "
                        "audit_start (macros/audit.sql) failed:"
                    ), line
                    assert '"audit.runs" does not exist' in line
                    assert "{% if target.name != 'dbt_assets' %}" in line
                    assert "exit code" not in line
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=1)


def test_partitioned_assets_need_a_partition_key(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop_dagster/daily.py": """
                import dagster as dg
                from dagster_dbt import DbtCliResource, dbt_assets

                from shop_dagster.definitions import project

                daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


                @dbt_assets(manifest=project.manifest_path, project=project, partitions_def=daily)
                def daily_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
                    yield from dbt.cli(["build"], context=context).stream()


                defs = dg.Definitions(assets=[daily_dbt_assets], resources={"dbt": DbtCliResource(project_dir=project)})
            """,
            "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.daily:defs"),
            "tests/test_daily.py": """
                import pytest

                from pytest_dbt_assets.errors import PartitionKeyError


                def test_without_key(dbt_assets_materialize):
                    with pytest.raises(PartitionKeyError) as excinfo:
                        dbt_assets_materialize(dbt_select="stg_orders")
                    assert str(excinfo.value) == (
                        "stg_orders is partitioned, and no partition_key was given. Pass partition_key= to "
                        "dbt_assets_materialize, e.g. dbt_assets_materialize(..., partition_key='2024-02-29'). "
                        "Partitions of stg_orders: 2024-01-01, 2024-01-02, ..., 2024-02-29 (60 in all)."
                    )


                def test_with_key(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+stg_orders", partition_key="2024-01-05")
                    assert result.row_counts == {"raw_orders": 4, "stg_orders": 4}
            """,
        },
    )
    result = run_inner(shop_repo)
    result.assert_outcomes(passed=2)
    assert "CheckError" not in result.stdout.str()


def test_no_colour_codes_in_messages(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            # A user's asset that checks dbt's seed output and quotes dbt's (coloured) log line.
            "shop_dagster/seed_check.py": """
                import dagster as dg
                from dagster_dbt import DbtCliResource

                from shop_dagster.definitions import defs as shop_defs


                @dg.asset
                def seed_check(dbt: DbtCliResource):
                    lines = [str(event) for event in dbt.cli(["seed"]).stream_raw_events()]
                    loaded = [line for line in lines if "INSERT" in line]
                    raise ValueError("unexpected seed load: " + loaded[0])


                defs = dg.Definitions(
                    assets=[*shop_defs.assets, seed_check], resources=shop_defs.resources
                )
            """,
            "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.seed_check:defs"),
            "tests/test_colours.py": """
                import pytest

                from pytest_dbt_assets.errors import MaterializationError


                def test_colours(dbt_assets_materialize):
                    result = dbt_assets_materialize(["seed_check"], raise_on_error=False)
                    [line] = result.failures
                    assert line.startswith("step seed_check raised ValueError: unexpected seed load: ")
                    assert "INSERT" in line
                    assert "\\x1b" not in line and "[0m" not in line and "[32m" not in line
                    with pytest.raises(MaterializationError) as excinfo:
                        dbt_assets_materialize(["seed_check"])
                    assert "INSERT" in str(excinfo.value)
                    assert "\\x1b" not in str(excinfo.value) and "[0m" not in str(excinfo.value)
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=1)


# A second dbt project in the same code location, with its own manifest: its @dbt_assets come
# after the shop's, so a failure in the shop's nodes must still find them by name.
FINANCE_FILES: dict[str, str] = {
    "finance/dbt_project.yml": """
        name: finance
        profile: finance_prod
    """,
    "finance/profiles.yml": """
        finance_prod:
          target: prod
          outputs:
            prod:
              type: duckdb
              path: finance_prod.duckdb
    """,
    "finance/models/ledger.sql": "select 1 as entry_id, 100 as amount",
    "finance/models/schema.yml": """
        version: 2
        models:
          - name: ledger
            columns:
              - name: entry_id
                data_tests: [not_null]
    """,
    "shop/models/marts/schema.yml": """
        version: 2
        models:
          - name: orders
            columns:
              - name: customer_id
                data_tests:
                  - accepted_values:
                      arguments:
                        values: [1]
    """,
    "shop_dagster/definitions.py": """
        from pathlib import Path

        import dagster as dg
        from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

        root = Path(__file__).parent.parent
        shop = DbtProject(project_dir=root / "shop")
        finance = DbtProject(project_dir=root / "finance")


        @dbt_assets(manifest=shop.manifest_path, project=shop)
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        @dbt_assets(manifest=finance.manifest_path, project=finance)
        def finance_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        defs = dg.Definitions(
            assets=[shop_dbt_assets, finance_dbt_assets],
            resources={"dbt": DbtCliResource(project_dir=shop)},
        )
    """,
}


def test_failures_name_nodes_of_every_dbt_assets_manifest(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **FINANCE_FILES,
            # Both dbt projects under test: finance's DbtProject names a dbt project of its own.
            "pyproject.toml": SHOP_INI.replace(
                'dbt_assets_project_dir = "shop"', 'dbt_assets_project_dir = ["shop", "finance"]'
            ),
            "tests/test_two_projects.py": """
                def test_shop_failure_is_named(dbt_assets_materialize):
                    result = dbt_assets_materialize(dbt_select="+orders", raise_on_error=False)
                    assert not result.success
                    [failure] = [line for line in result.failures if line.startswith("dbt test ")]
                    assert failure.startswith(
                        "dbt test accepted_values_orders_customer_id__1 on model orders failed: Got 2 results"
                    ), failure
            """,
        },
    )
    run_inner(shop_repo).assert_outcomes(passed=1)


def test_a_failed_test_shows_each_log_line_once_without_colours_or_upstream_warnings(
    shop_repo: pytest.Pytester,
) -> None:
    """dbt's tracking library installs a root log handler at import and Dagster's own loggers
    reached pytest's log capture as well as Dagster's console: each line was printed three
    times, dbt's with raw colour codes, and dagster-dbt's deprecation and beta warnings ended
    in the summary. The user's own warning and log lines still do; what failed is told by the
    plugin's error, with where the Python asset raised."""
    write_files(
        shop_repo.path,
        {
            "shop_dagster/noisy.py": """
                import warnings

                import dagster as dg

                from shop_dagster.definitions import defs as shop_defs


                @dg.asset(deps=[dg.AssetKey(["acme", "marts", "customers"])])
                def noisy(context: dg.AssetExecutionContext):
                    context.log.info("CONTEXT-MARK")
                    dg.get_dagster_logger().info("BUILTIN-MARK")
                    warnings.warn("USER-MARK", DeprecationWarning, stacklevel=1)
                    raise ValueError("boom")


                defs = dg.Definitions(assets=[*shop_defs.assets, noisy], resources=shop_defs.resources)
            """,
            "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.noisy:defs"),
            "tests/test_noisy.py": """
                def test_noisy(dbt_assets_materialize):
                    dbt_assets_materialize(["noisy"], dbt_select="+customers")
            """,
        },
    )
    result = run_inner(shop_repo, "-W", "default")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    for mark in ("CONTEXT-MARK", "BUILTIN-MARK"):
        assert output.count(mark) == 1, (mark, output)
    # Not the user's: dagster-dbt's notes and echo of dbt's log, Dagster's events and stack traces.
    for upstream in ("Running dbt command", "Completed successfully", "STEP_FAILURE", "Stack Trace"):
        assert upstream not in output, (upstream, output)
    assert 'noisy.py", line' in output and 'raise ValueError("boom")' in output  # where it was raised
    assert "\x1b[" not in output and "[32m" not in output and "[0m" not in output
    assert "BetaWarning" not in output and "AssetExecutionContext.op is deprecated" not in output
    assert "USER-MARK" in output  # the user's own warning stays


def test_a_body_that_stops_reading_dbt_leaves_no_upstream_warning(shop_repo: pytest.Pytester) -> None:
    """dagster-dbt's generator over dbt's output, dropped unfinished when the ``@dbt_assets``
    body raised while dbt streamed, ignores being closed: pytest showed "generator ignored
    GeneratorExit" from dagster-dbt's code as a warning of whichever test collected it. An
    error of the user's own that Python cannot raise is still shown."""
    definitions = SHOP_DAGSTER_FILES["shop_dagster/definitions.py"]
    streaming = 'yield from dbt.cli(["build"], context=context).stream()'
    assert streaming in definitions
    stopping = """for event in dbt.cli(["build"], context=context).stream():
                yield event
                raise RuntimeError("stopped after the first event")"""
    write_files(
        shop_repo.path,
        {
            "shop_dagster/definitions.py": definitions.replace(streaming, stopping),
            "tests/test_stops.py": """
                import gc


                class Leaky:
                    def __del__(self):
                        raise ValueError("USER-UNRAISABLE")


                def test_stops(dbt_assets_materialize):
                    result = dbt_assets_materialize(raise_on_error=False)
                    assert result.failures == ["step shop_dbt_assets raised RuntimeError: stopped after the first event"]
                    gc.collect()


                def test_users_own():
                    Leaky()
                    gc.collect()
            """,
        },
    )
    result = run_inner(shop_repo)
    result.assert_outcomes(passed=2, warnings=1)
    output = result.stdout.str()
    assert "USER-UNRAISABLE" in output
    assert "GeneratorExit" not in output and "_stream_stdout" not in output, output
