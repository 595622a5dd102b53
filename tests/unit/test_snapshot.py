"""Unit tests of the snapshot format, the semantic diff, tolerances and Mermaid output."""

from __future__ import annotations

import pytest
import yaml

from pytest_dbt_assets.graph import AssetGraph
from pytest_dbt_assets.mermaid import flowchart
from pytest_dbt_assets.snapshot import HEADER, RowTolerance, describe_changes, render, within_tolerance

GRAPH = AssetGraph(
    keys=["acme/marts/customers", "acme/marts/orders", "acme/staging/stg_orders"],
    deps={
        "acme/marts/customers": ["acme/marts/orders"],
        "acme/marts/orders": ["acme/staging/stg_orders"],
        "acme/staging/stg_orders": [],
    },
    groups={"acme/marts/customers": "marts", "acme/marts/orders": "marts", "acme/staging/stg_orders": "staging"},
    checks={"acme/marts/customers": ["unique_customers_customer_id"]},
)


def test_render_is_sorted_yaml_with_format_header() -> None:
    text = render(GRAPH)
    assert text.startswith(HEADER)
    assert yaml.safe_load(text)["assets"]["acme/marts/customers"] == {
        "group": "marts",
        "deps": ["acme/marts/orders"],
        "checks": ["unique_customers_customer_id"],
    }
    assert render({"b": 1, "a": {2, 1}}) == HEADER + "a:\n- 1\n- 2\nb: 1\n"


def test_render_refuses_framework_objects() -> None:
    with pytest.raises(TypeError, match="cannot serialize a object"):
        render(object())


def _summary(rows: int, check: str = "passed", **extra: object) -> dict:
    return {
        "success": True,
        "assets": {"acme/marts/customers": {"rows": rows, **extra}},
        "checks": {"unique_customers_customer_id": check},
    }


def test_describe_changes_names_each_change() -> None:
    old = GRAPH.to_data()
    new = yaml.safe_load(render(GRAPH))
    new["assets"]["acme/marts/customers"]["deps"] = ["acme/staging/stg_orders"]
    new["assets"]["acme/marts/orders"]["group"] = "staging"
    new["assets"]["acme/marts/refunds"] = {"group": "marts", "deps": []}
    assert describe_changes(old, new) == [
        "asset added: acme/marts/refunds",
        "dependency removed: acme/marts/customers -> acme/marts/orders",
        "dependency added: acme/marts/customers -> acme/staging/stg_orders",
        "group changed: acme/marts/orders marts -> staging",
    ]
    assert describe_changes(_summary(6), _summary(7, "failed")) == [
        "row count acme/marts/customers: 6 -> 7 (+16.7%)",
        "check unique_customers_customer_id: passed -> failed",
    ]


def test_describe_changes_reports_column_drift() -> None:
    old = _summary(3, columns={"id": "INTEGER", "name": "VARCHAR"})
    new = _summary(3, columns={"id": "BIGINT", "email": "VARCHAR"})
    assert describe_changes(old, new) == [
        "column removed: acme/marts/customers.name",
        "column added: acme/marts/customers.email VARCHAR",
        "column type changed: acme/marts/customers.id INTEGER -> BIGINT",
    ]


@pytest.mark.parametrize(
    ("tolerance", "new_rows", "expected"),
    [
        (RowTolerance(), 100, True),
        (RowTolerance(), 101, False),
        (RowTolerance(relative=0.1), 110, True),
        (RowTolerance(relative=0.1), 111, False),
        (RowTolerance(absolute=2), 98, True),
        (RowTolerance(absolute=2), 97, False),
        (RowTolerance.build(assets={"acme/marts/*": {"relative": 0.5}}), 150, True),
        (RowTolerance.build(relative=0.5, assets={"acme/marts/customers": {"absolute": 1}}), 102, False),
    ],
)
def test_row_tolerance(tolerance: RowTolerance, new_rows: int, expected: bool) -> None:
    assert within_tolerance(_summary(100), _summary(new_rows), tolerance) is expected


def test_tolerance_never_hides_other_changes() -> None:
    loose = RowTolerance(relative=1.0)
    assert not within_tolerance(_summary(100), _summary(100, "failed"), loose)
    assert not within_tolerance(_summary(100), {**_summary(100), "success": False}, loose)


def test_mermaid_flowchart_of_a_small_graph() -> None:
    assert GRAPH.mermaid() == (
        "flowchart LR\n"
        '  subgraph g0["marts"]\n'
        '    n0["acme/marts/customers"]\n'
        '    n1["acme/marts/orders"]\n'
        "  end\n"
        '  subgraph g1["staging"]\n'
        '    n2["acme/staging/stg_orders"]\n'
        "  end\n"
        "  n1 --> n0\n"
        "  n2 --> n1\n"
    )


def test_mermaid_statuses_become_styled_classes() -> None:
    chart = flowchart({"b": ["a"], "c": ["b"]}, statuses={"a": "materialized", "b": "failed", "c": "skipped"})
    assert "  class n0 materialized\n" in chart
    assert "  class n1 failed\n" in chart
    assert "  class n2 skipped\n" in chart
    assert chart.count("classDef") == 3


def _graph(jobs: dict[str, list[str]] | None = None, schedules: dict | None = None) -> AssetGraph:
    return AssetGraph(
        keys=["a", "b"],
        deps={"a": [], "b": ["a"]},
        groups={"a": "g", "b": "g"},
        jobs=jobs or {},
        schedules=schedules or {},
    )


def test_graph_without_jobs_renders_as_before() -> None:
    assert render(_graph()) == (
        "# pytest-dbt-assets snapshot, format 1\nassets:\n  a:\n    deps: []\n    group: g\n"
        "  b:\n    deps:\n    - a\n    group: g\n"
    )


def test_selection_changes_are_told_in_words() -> None:
    old = _graph(
        jobs={"all": ["a", "b"], "only_a": ["a"], "ops": [], "gone": ["a"]},
        schedules={"nightly": {"cron": "0 2 * * *", "job": "all", "assets": ["a", "b"]}},
    ).to_data()
    new = _graph(
        jobs={"all": [], "only_a": ["b"], "ops": [], "new": ["a"]},
        schedules={
            "nightly": {"cron": "0 3 * * *", "job": "all", "assets": []},
            "hourly": {"cron": "0 * * * *", "assets": []},
        },
    ).to_data()
    assert describe_changes(old, new) == [
        "job removed: gone",
        "job added: new (selects 1 asset)",
        "job all: now selects NO assets (it selected 2 assets: a, b); its runs would do nothing",
        "job only_a: now also selects 1 asset: b; no longer selects 1 asset: a",
        "schedule added: hourly (cron 0 * * * *, selects NO assets)",
        "schedule nightly: cron 0 2 * * * -> 0 3 * * *",
        "schedule nightly: now selects NO assets (it selected 2 assets: a, b); its runs would do nothing",
    ]
    assert describe_changes(new, old)[-1] == "schedule nightly: now selects 2 assets: a, b"
