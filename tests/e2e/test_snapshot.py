"""End to end: snapshot files, diffs told in words, tolerances, Mermaid and the summary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_dbt_assets.snapshot import MERMAID_MARK
from tests.repos import GRAPH_SNAPSHOT_TEST, run_pytest, write_files

pytestmark = pytest.mark.e2e

MATERIALIZE_TEST = """
    import pytest

    def test_run(dbt_assets_materialize, dbt_assets_snapshot):
        result = dbt_assets_materialize(dbt_select="+customers +orders", raise_on_error=False)
        assert result.summary(columns=True) == dbt_assets_snapshot
"""


def _snapshot_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("__snapshots__/**/*"))
        if path.is_file()
    }


def test_materialization_changes_are_told_in_words(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_run.py": MATERIALIZE_TEST})
    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=1)

    # One more customer, duplicated: row counts move and the unique test now fails.
    seed = shop_repo.path / "shop/seeds/raw_customers.csv"
    seed.write_text(seed.read_text() + "3,Cyrus\n")
    # A column changes type: schema drift shows up offline.
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/orders.sql": (
                "select order_id, customer_id, cast(amount as double) as amount from {{ ref('stg_orders') }}"
            )
        },
    )
    result = shop_repo.runpytest("-vv", "-rf")
    result.assert_outcomes(failed=1)
    # The short summary line names the first change, not `AssertionError: assert [+ recei...`.
    result.stdout.fnmatch_lines(
        ["FAILED tests/test_run.py::test_run - What changed: row count acme/marts/customers: 3 -> 4*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*What changed:*",
            "*row count acme/marts/customers: 3 -> 4 (+33.3%)*",
            "*column type changed: acme/marts/orders.amount INTEGER -> DOUBLE*",
            "*row count acme/raw/raw_customers: 3 -> 4 (+33.3%)*",
            "*check unique_customers_customer_id: passed -> failed*",
            "*success: True -> False*",
        ]
    )
    # The fixture's value in the traceback header is one short line, not the snapshot cut mid-word.
    result.stdout.fnmatch_lines(["dbt_assets_snapshot = <dbt_assets_snapshot of test_run, 1 compared>"])
    assert "dbt_assets_snapshot = # pytest-dbt-assets snapshot" not in result.stdout.str()


# Each test holds one tolerance: from the marker (relative, absolute, too tight, per asset) or
# as a snapshot option. All materialize +customers; the seed then grows 3 -> 4 -> 5 rows.
TOLERANCES_TEST = """
    import pytest

    from pytest_dbt_assets.snapshot import row_tolerance


    def summary(dbt_assets_materialize):
        return dbt_assets_materialize(dbt_select="+customers").summary()


    @pytest.mark.dbt_assets(row_tolerance={"relative": 0.5})
    def test_relative(dbt_assets_materialize, dbt_assets_snapshot):
        assert summary(dbt_assets_materialize) == dbt_assets_snapshot


    @pytest.mark.dbt_assets(row_tolerance={"absolute": 1})
    def test_absolute(dbt_assets_materialize, dbt_assets_snapshot):
        assert summary(dbt_assets_materialize) == dbt_assets_snapshot


    @pytest.mark.dbt_assets(row_tolerance={"relative": 0.1})
    def test_too_tight(dbt_assets_materialize, dbt_assets_snapshot):
        assert summary(dbt_assets_materialize) == dbt_assets_snapshot


    @pytest.mark.dbt_assets(row_tolerance={"relative": 0.1, "assets": {"acme/*": {"absolute": 1}}})
    def test_per_asset(dbt_assets_materialize, dbt_assets_snapshot):
        assert summary(dbt_assets_materialize) == dbt_assets_snapshot


    def test_snapshot_option(dbt_assets_materialize, dbt_assets_snapshot):
        assert summary(dbt_assets_materialize) == dbt_assets_snapshot(extension_class=row_tolerance(absolute=1))
"""


def _outcomes(result: pytest.HookRecorder) -> dict[str, list[str]]:
    passed, skipped, failed = result.listoutcomes()
    assert not skipped
    return {
        "passed": sorted(report.nodeid.split("::")[-1] for report in passed),
        "failed": sorted(report.nodeid.split("::")[-1] for report in failed),
    }


def test_row_count_tolerances_from_the_marker_and_as_a_snapshot_option(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_run.py": TOLERANCES_TEST})
    every = ["test_absolute", "test_per_asset", "test_relative", "test_snapshot_option", "test_too_tight"]
    assert _outcomes(shop_repo.inline_run("--snapshot-update")) == {"passed": every, "failed": []}
    seed = shop_repo.path / "shop/seeds/raw_customers.csv"
    seed.write_text(seed.read_text() + "4,Di\n")  # 3 -> 4 rows: +33 %, +1 row
    assert _outcomes(shop_repo.inline_run()) == {
        "passed": ["test_absolute", "test_per_asset", "test_relative", "test_snapshot_option"],
        "failed": ["test_too_tight"],
    }
    seed.write_text(seed.read_text() + "5,Ed\n")  # 3 -> 5 rows: +67 %, +2 rows
    assert _outcomes(shop_repo.inline_run()) == {"passed": [], "failed": every}


def test_mermaid_written_next_to_graph_snapshot(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {"tests/test_graph.py": GRAPH_SNAPSHOT_TEST},
    )
    shop_repo.runpytest("--snapshot-update", "--dbt-assets-mermaid").assert_outcomes(passed=1)
    picture = shop_repo.path / "tests/__snapshots__/test_graph/test_graph.md"
    text = picture.read_text()
    assert text.startswith(MERMAID_MARK + "\n# test_graph\n\n```mermaid\nflowchart LR\n")
    assert '["acme/marts/customers"]' in text
    # Unused-snapshot detection leaves the picture alone while its snapshot is used...
    result = shop_repo.runpytest("--snapshot-update", "--dbt-assets-mermaid")
    result.assert_outcomes(passed=1)
    assert picture.exists()
    # ...and removes it with its snapshot once the test is gone.
    (shop_repo.path / "tests/test_graph.py").write_text("def test_other():\n    pass\n")
    shop_repo.runpytest("--snapshot-update", "--dbt-assets-mermaid").assert_outcomes(passed=1)
    assert not picture.exists()


def test_terminal_summary_on_verbose(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "tests/test_run.py": """
        def test_run(dbt_assets_materialize):
            assert dbt_assets_materialize(dbt_select="+customers").success
    """
        },
    )
    # Quiet runs print no summary: see test_snapshots_byte_identical_across_runs_workers_and_paths.
    verbose = shop_repo.runpytest("-v")
    verbose.stdout.fnmatch_lines(
        [
            "*dbt assets materialized*",
            "tests/test_run.py::test_run  [[]ok[]]  5 assets, 2 checks",
            "  acme/marts/customers *3",
            "  checks: 2 ok",
        ]
    )


def test_snapshots_byte_identical_across_runs_workers_and_paths(shop_repo: pytest.Pytester, tmp_path: Path) -> None:
    write_files(
        shop_repo.path,
        {
            "tests/test_run.py": MATERIALIZE_TEST,
            "tests/test_graph.py": GRAPH_SNAPSHOT_TEST,
        },
    )
    quiet = shop_repo.runpytest("--snapshot-update")
    quiet.assert_outcomes(passed=2)
    assert "dbt assets materialized" not in quiet.stdout.str()  # the summary is for -v only
    first = _snapshot_files(shop_repo.path)
    assert len(first) == 2
    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=2)
    assert _snapshot_files(shop_repo.path) == first

    # A copy of the repo in another folder, snapshots removed, regenerated with 2 workers.
    other = tmp_path / "elsewhere" / "repo"
    shutil.copytree(shop_repo.path, other, ignore=shutil.ignore_patterns("__snapshots__", "target", "__pycache__"))
    run = run_pytest(other, "-n", "2", "--snapshot-update")
    assert run.returncode == 0, run.stdout[-3000:]
    assert _snapshot_files(other) == first


def test_materialization_mermaid_styles_each_status(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/orders.sql": "select no_such_column from {{ ref('stg_orders') }}",  # SQL error
            "shop/models/marts/order_totals.sql": "select sum(amount) as total from {{ ref('orders') }}",
            "tests/test_run.py": """
            def test_run(dbt_assets_materialize):
                result = dbt_assets_materialize(raise_on_error=False)
                assert result.statuses["acme/marts/orders"] == "failed"
                assert result.statuses["acme/marts/order_totals"] == "skipped"
                assert result.statuses["acme/marts/customers"] == "materialized"
                chart = result.mermaid()
                ids = {line.split('["')[1].rstrip('"]'): line.split('[')[0].strip()
                       for line in chart.splitlines() if '["' in line}
                classes = {line.split()[2]: line.split()[1].split(",")
                           for line in chart.splitlines() if line.startswith("  class ")}
                assert ids["acme/marts/orders"] in classes["failed"]
                assert ids["acme/marts/order_totals"] in classes["skipped"]
                assert ids["acme/marts/customers"] in classes["materialized"]
                assert f"  {ids['acme/marts/orders']} --> {ids['acme/marts/order_totals']}" in chart
        """,
        },
    )
    shop_repo.runpytest().assert_outcomes(passed=1)
