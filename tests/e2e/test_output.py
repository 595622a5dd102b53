"""What a failed test prints, as a user reads it: a failing graph snapshot, a row-count change
and a failed dbt test each take at most 80 lines, with no line three times, no colour codes,
and a short summary line that names what failed."""

from __future__ import annotations

import re

import pytest

from tests.repos import write_files

pytestmark = pytest.mark.e2e

TESTS = """
    def test_graph(dbt_asset_graph, dbt_assets_snapshot):
        assert dbt_asset_graph == dbt_assets_snapshot


    def test_rows(dbt_assets_materialize, dbt_assets_snapshot):
        assert dbt_assets_materialize(dbt_select="+orders").summary() == dbt_assets_snapshot


    def test_dbt_tests(dbt_assets_materialize):
        dbt_assets_materialize(dbt_select="+customers")
"""

CHANGED = {
    "shop/models/marts/extra.sql": "select * from {{ ref('customers') }}",
    "shop/models/marts/orders.sql": "select * from {{ ref('stg_orders') }} where order_id < 12",
    "shop/models/marts/schema.yml": """
        version: 2
        models:
          - name: customers
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
              - name: name
                data_tests:
                  - accepted_values:
                      arguments:
                        values: [Ann]
          - name: orders
            columns:
              - name: order_id
                data_tests: [unique]
    """,
}


def _sections(output: str) -> dict[str, list[str]]:
    """Each failed test's lines in pytest's FAILURES part, by test name."""
    part = output.split("= FAILURES =", 1)[1].split("short test summary info", 1)[0]
    sections: dict[str, list[str]] = {}
    name = None
    for line in part.splitlines():
        header = re.fullmatch(r"_+ (test_\w+) _+", line)
        if header:
            name = header.group(1)
            sections[name] = []
        elif name is not None:
            sections[name].append(line)
    return sections


def test_each_failure_reads_at_a_glance(shop_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a terminal's width: pytest cuts summary lines to it
    write_files(shop_repo.path, {"tests/test_out.py": TESTS})
    shop_repo.runpytest("-p", "no:cacheprovider", "--snapshot-update").assert_outcomes(passed=3)
    write_files(shop_repo.path, CHANGED)

    result = shop_repo.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert "\x1b[" not in output and "[32m" not in output and "[0m" not in output

    sections = _sections(output)
    assert sorted(sections) == ["test_dbt_tests", "test_graph", "test_rows"], output
    for name, lines in sections.items():
        assert len(lines) <= 80, (name, len(lines), "\n".join(lines))
        counted = [line for line in lines if len(line.strip()) > 12]
        thrice = {line for line in counted if counted.count(line) >= 3}
        assert not thrice, (name, thrice)
    # dbt's log, echoed by dagster-dbt, and Dagster's events are not part of it.
    assert "START sql table model" not in output and "STEP_FAILURE" not in output

    summary = {line.split(" - ", 1)[0]: line for line in result.stdout.lines if line.startswith("FAILED ")}
    assert summary["FAILED tests/test_out.py::test_graph"].startswith(
        "FAILED tests/test_out.py::test_graph - What changed: asset added: acme/marts/extra"
    ), summary
    assert summary["FAILED tests/test_out.py::test_rows"].startswith(
        "FAILED tests/test_out.py::test_rows - What changed: row count acme/marts/orders: 4 -> 2"
    ), summary
    assert summary["FAILED tests/test_out.py::test_dbt_tests"].startswith(
        "FAILED tests/test_out.py::test_dbt_tests - dbt test accepted_values_customers_name"
    ), summary
