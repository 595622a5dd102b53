"""Base-branch comparisons on example_project in a git repository: the data diff of a changed
staging model checked against hand-written queries, a column-only change told as non-breaking,
the graph impact, the pull-request report, and the user's checkout left as it was."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.repos import checkout_state, commit_new_repo, edit, git, write_files

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STG_ORDERS = "jaffle_dbt/models/staging/stg_orders.sql"
STG_CUSTOMERS = "jaffle_dbt/models/staging/stg_customers.sql"
CONFTEST = """
import pytest
from jaffle_dagster.resources import DuckDBWarehouse

@pytest.fixture
def dbt_assets_resources(dbt_assets_project):
    return {"warehouse": DuckDBWarehouse(path=str(dbt_assets_project.duckdb_path))}
"""


def example_repo(pytester: pytest.Pytester, variant: str = "") -> Path:
    """example_project (or its ``variant`` folder) as a team's repository: committed on main,
    with its usual ignores."""
    repo = pytester.path
    skipped = ("__snapshots__", "target", "logs", "__pycache__", "tests", "jaffle_components", "jaffle_snowflake")
    shutil.copytree(
        ROOT / "example_project" / variant, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*skipped)
    )
    files = {".gitignore": "target/\n.pytest_cache/\n__pycache__/\n*.duckdb\n"}
    write_files(repo, files if variant else {**files, "tests/conftest.py": CONFTEST})
    commit_new_repo(repo, "jaffle shop")
    return repo


def test_a_changed_staging_model_is_told_row_by_row_downstream(pytester: pytest.Pytester) -> None:
    repo = example_repo(pytester)
    edit(repo, STG_ORDERS, "from {{ ref('raw_orders') }}", "from {{ ref('raw_orders') }}\nwhere status != 'returned'")
    write_files(
        repo,
        {
            "tests/test_change.py": """
        def test_returned_orders_leave(dbt_assets_diff, dbt_assets_project):
            diff = dbt_assets_diff(
                base="main", select=["predicted_orders"], dbt_select="+customers +orders +daily_order_summary"
            )
            print("\\n".join(diff.describe()))
            query = dbt_assets_project.query
            # By hand, on the seeds both builds read: the orders the change drops, their customers.
            returned = query("select count(*) from raw_orders where status = 'returned'")[0][0]
            customers = query("select count(distinct user_id) from raw_orders where status = 'returned'")[0][0]
            assert returned > 0 and customers > 0
            stg_orders = diff["jaffle/staging/stg_orders"]
            assert (stg_orders.removed, stg_orders.added, stg_orders.changed) == (returned, 0, 0)
            assert stg_orders.key_columns == ["order_id"]
            assert diff["jaffle/marts/orders"].removed == returned
            changed = diff["jaffle/marts/customers"]
            assert (changed.changed, changed.added, changed.removed) == (customers, 0, 0)
            assert "number_of_orders" in changed.changed_columns
            # The customers whose numbers changed are those with a returned order, by key.
            keys = {example["key"]["customer_id"] for example in changed.examples["changed"]}
            hit = {row[0] for row in query("select distinct user_id from raw_orders where status = 'returned'")}
            assert keys <= hit and len(keys) == min(3, customers)
            assert diff["jaffle/staging/stg_customers"].unchanged()
            assert diff["jaffle/marts/customers"].breaking
            # A Python asset's table, read from the database it wrote: the forecast moved.
            forecast = diff["predicted_orders"]
            assert forecast.rows_base == forecast.rows_current == 3 and not forecast.unchanged()
        """
        },
    )
    before = checkout_state(repo)
    result = pytester.runpytest("-p", "no:randomly", "-n", "2", "tests/test_change.py")  # as users run it
    result.assert_outcomes(passed=1)
    assert checkout_state(repo) == before


def test_a_column_added_is_non_breaking_and_the_report_shows_the_impacted_subgraph(pytester: pytest.Pytester) -> None:
    repo = example_repo(pytester)
    # On main: a snapshot of what stg_customers builds, with its columns, kept by the team.
    write_files(
        repo,
        {
            "tests/test_snapshot.py": """
        def test_customers_columns(dbt_assets_materialize, dbt_assets_snapshot):
            assert dbt_assets_materialize(dbt_select="+stg_customers").summary(columns=True) == dbt_assets_snapshot
        """
        },
    )
    pytester.runpytest("-p", "no:randomly", "--snapshot-update", "tests/test_snapshot.py").assert_outcomes(passed=1)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message=a snapshot")
    edit(repo, STG_CUSTOMERS, "select\n", "select\n    upper(first_name) as shout_name,\n")
    git(repo, "checkout", "--quiet", "-b", "shout")
    git(repo, "commit", "--quiet", "--all", "--message=add a column")
    write_files(
        repo,
        {
            "tests/test_change.py": """
        def test_only_a_column_added(dbt_assets_diff):
            # Each side starts from its revision's session baseline and builds only the model.
            diff = dbt_assets_diff(base="main", dbt_select="stg_customers", baseline=True)
            assert list(diff.tables) == ["jaffle/staging/stg_customers"]
            table = diff["jaffle/staging/stg_customers"]
            assert table.columns_added == {"shout_name": "VARCHAR"}
            assert (table.added, table.removed, table.changed) == (0, 0, 0)
            assert not table.breaking

        def test_impact(dbt_asset_graph):
            impact = dbt_asset_graph.diff(base="main")
            assert impact.modified == {"jaffle/staging/stg_customers": ["SQL"]}
            assert set(impact.indirect) == {"jaffle/marts/customers"}
            assert impact.added == impact.removed == []
        """
        },
    )
    before = checkout_state(repo)
    result = pytester.runpytest(
        "-p", "no:randomly", "--dbt-assets-impact", "--dbt-assets-base=main", "--dbt-assets-report=report.md"
    )
    result.assert_outcomes(passed=2, failed=1)  # the snapshot sees the new column
    result.stdout.fnmatch_lines(["*dbt-assets impact*", "*against main (*", "*jaffle/staging/stg_customers*SQL*"])
    report = (repo / "report.md").read_text()
    assert "```mermaid" in report and "stg_customers" in report and "customers" in report
    assert r"column shout\_name added (varchar), no rows changed (non-breaking)" in report  # Markdown-escaped
    failed = report[report.index("### Failed snapshots (1)") :]
    assert "tests/test_snapshot.py::test_customers_columns" in failed and "shout_name" in failed
    (repo / "report.md").unlink()
    assert checkout_state(repo) == before


def test_an_unknown_base_says_how_to_fetch_it(pytester: pytest.Pytester) -> None:
    repo = example_repo(pytester)
    write_files(
        repo,
        {
            "tests/test_change.py": """
        def test_diff(dbt_assets_diff):
            dbt_assets_diff(dbt_select="stg_customers")
        """
        },
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*RevisionError: git does not know the base revision 'origin/main'*git fetch origin main*"]
    )


def test_a_snowflake_teams_change_is_compared_on_the_emulator(pytester: pytest.Pytester) -> None:
    # Looked up, not imported: see tests/e2e/test_docs.py::test_snowflake_quick_start.
    if not all(importlib.util.find_spec(name) for name in ("fakesnow", "dagster_snowflake")):
        pytest.skip("the snowflake extra and dagster-snowflake are not installed")
    repo = example_repo(pytester, "jaffle_snowflake")
    with (repo / STG_ORDERS).open("a") as sql:
        sql.write("where status != 'returned'\n")
    write_files(
        repo,
        {
            "tests/test_change.py": """
        def test_returned_orders_leave(dbt_assets_diff, dbt_assets_project):
            diff = dbt_assets_diff(base="main", dbt_select="+customers +orders")
            returned = dbt_assets_project.query("select count(*) from RAW.JAFFLE.ORDERS where status = 'returned'")[0][0]
            # Keys as the YAML names them, columns as Snowflake folds them.
            assert diff["jaffle_sf/staging/stg_orders"].key_columns == ["ORDER_ID"]
            assert diff["jaffle_sf/staging/stg_orders"].removed == returned > 0
            assert "NUMBER_OF_ORDERS" in diff["jaffle_sf/marts/customers"].changed_columns
        """
        },
    )
    before = checkout_state(repo)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    assert checkout_state(repo) == before
