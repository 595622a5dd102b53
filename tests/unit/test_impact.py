"""pytest_dbt_assets.diff.impact on hand-written graph exports (format 1)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pytest_dbt_assets.diff.impact import Impact, compare_graphs

RAW = "acme/raw/orders"
COUNTRIES = "acme/seeds/countries"
STG_ORDERS = "acme/staging/stg_orders"
STG_CUSTOMERS = "acme/staging/stg_customers"
ORDERS = "acme/marts/orders"
CUSTOMERS = "acme/marts/customers"
WEEKLY = "acme/reports/weekly"


def _asset(
    kind: str,
    group: str | None,
    deps: list[str],
    facets: dict[str, str],
    checks: list[str] | None = None,
    columns: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "group": group,
        "deps": sorted(deps),
        "checks": sorted(checks or []),
        "facets": facets,
        "columns": columns or {},
    }


def _dbt(sql: str) -> dict[str, str]:
    return {"sql": sql, "config": "c-" + sql, "macros": "m0", "spec": "s-" + sql}


BASE: dict[str, Any] = {
    "format": 1,
    "assets": {
        RAW: _asset("python", "raw", [], {"code_version": "v1", "python_code": "p1", "spec": "s-raw"}),
        COUNTRIES: _asset("dbt_seed", "seeds", [], {"seed": "csv1", "config": "c-seed", "spec": "s-seed"}),
        STG_ORDERS: _asset(
            "dbt_model",
            "staging",
            [RAW],
            _dbt("so1"),
            checks=["not_null_stg_orders_order_id"],
            columns={"order_id": "integer", "status": "varchar", "note": None},
        ),
        STG_CUSTOMERS: _asset("dbt_model", "staging", [COUNTRIES], _dbt("sc1")),
        ORDERS: _asset("dbt_model", "marts", [STG_ORDERS], _dbt("o1")),
        CUSTOMERS: _asset("dbt_model", "marts", [ORDERS, STG_CUSTOMERS], _dbt("c1")),
        WEEKLY: _asset("python", "reports", [CUSTOMERS], {"python_code": "w1", "spec": "s-w"}),
    },
    "jobs": {"daily": [CUSTOMERS, ORDERS], "raw_job": [RAW]},
    "schedules": {"daily_at_6": {"cron": "0 6 * * *", "job": "daily", "assets": [CUSTOMERS, ORDERS]}},
}


def _changed(**edits: Any) -> dict[str, Any]:
    """A copy of BASE with ``asset key -> {field: value}`` edits (facets merged)."""
    current = copy.deepcopy(BASE)
    for key, fields in edits.items():
        for name, value in fields.items():
            if name == "facets":
                current["assets"][key]["facets"].update(value)
            else:
                current["assets"][key][name] = value
    return current


def _compare(current: dict[str, Any]) -> Impact:
    return compare_graphs(BASE, current, base_label="origin/main (1a2b3c4)")


def _edit(key: str, **fields: Any) -> Impact:
    return _compare(_changed(**{key: fields}))


def test_a_sql_change_is_modified_and_its_downstream_indirect_transitively() -> None:
    impact = _edit(STG_ORDERS, facets={"sql": "so2"})
    assert impact.modified == {STG_ORDERS: ["SQL"]}
    assert impact.indirect == {ORDERS: [STG_ORDERS], CUSTOMERS: [STG_ORDERS], WEEKLY: [STG_ORDERS]}
    assert impact.impacted() == {STG_ORDERS, ORDERS, CUSTOMERS, WEEKLY}
    assert "modified: acme/staging/stg_orders (SQL)" in impact.describe()
    assert "indirect: acme/reports/weekly (via acme/staging/stg_orders)" in impact.describe()


@pytest.mark.parametrize(
    ("key", "facets", "reasons"),
    [
        (STG_ORDERS, {"config": "c-new"}, ["YAML config"]),
        (STG_ORDERS, {"macros": "m1"}, ["macro"]),
        (COUNTRIES, {"seed": "csv2"}, ["seed data"]),
        (RAW, {"code_version": "v2"}, ["Python code version"]),
        (RAW, {"python_code": "p2"}, ["Python code"]),
        (RAW, {"code_version": "v2", "python_code": "p2"}, ["Python code", "Python code version"]),
        (STG_ORDERS, {"spec": "s-new"}, ["translator output"]),
    ],
)
def test_each_facet_is_a_direct_modification_by_its_display_name(
    key: str, facets: dict[str, str], reasons: list[str]
) -> None:
    impact = _edit(key, facets=facets)
    assert impact.modified == {key: reasons}


def test_a_seed_change_reaches_the_models_that_read_it() -> None:
    impact = _edit(COUNTRIES, facets={"seed": "csv2"})
    assert impact.indirect == {STG_CUSTOMERS: [COUNTRIES], CUSTOMERS: [COUNTRIES], WEEKLY: [COUNTRIES]}


def test_a_facet_present_at_one_side_only_is_a_change() -> None:
    current = copy.deepcopy(BASE)
    del current["assets"][RAW]["facets"]["code_version"]
    assert _compare(current).modified == {RAW: ["Python code version"]}


def test_translator_group_and_spec_changes_are_modifications() -> None:
    impact = _edit(STG_CUSTOMERS, group="core", facets={"spec": "s-other"})
    assert impact.modified == {STG_CUSTOMERS: ["group", "translator output"]}
    assert impact.indirect == {CUSTOMERS: [STG_CUSTOMERS], WEEKLY: [STG_CUSTOMERS]}


def test_an_ancestor_reached_through_two_changes_lists_both() -> None:
    current = _changed(**{STG_ORDERS: {"facets": {"sql": "so2"}}, STG_CUSTOMERS: {"facets": {"sql": "sc2"}}})
    impact = _compare(current)
    assert impact.indirect[CUSTOMERS] == [STG_CUSTOMERS, STG_ORDERS]
    assert "indirect: acme/marts/customers (via acme/staging/stg_customers, acme/staging/stg_orders)" in (
        impact.describe()
    )


def test_an_added_asset_and_its_checks() -> None:
    current = copy.deepcopy(BASE)
    current["assets"]["acme/marts/new_model"] = _asset(
        "dbt_model", "marts", [STG_ORDERS], _dbt("n1"), checks=["unique_new_model_id"]
    )
    impact = _compare(current)
    assert impact.added == ["acme/marts/new_model"]
    assert impact.modified == {}
    assert impact.indirect == {}
    assert impact.checks == {"added": ["acme/marts/new_model:unique_new_model_id"]}
    assert "added: acme/marts/new_model" in impact.describe()


def test_a_removed_asset_breaks_and_its_downstream_still_present_is_indirect() -> None:
    current = copy.deepcopy(BASE)
    del current["assets"][ORDERS]
    current["assets"][CUSTOMERS]["deps"] = [STG_CUSTOMERS]
    impact = _compare(current)
    assert impact.removed == [ORDERS]
    assert impact.breaking == {ORDERS: ["asset removed"]}
    assert impact.modified == {CUSTOMERS: ["dependencies"]}
    assert impact.indirect == {WEEKLY: [CUSTOMERS, ORDERS]}
    assert impact.touched() == {ORDERS, CUSTOMERS, WEEKLY}
    assert ORDERS not in impact.impacted()


def test_a_removed_asset_is_named_as_a_cause_of_everything_it_fed_in_the_base() -> None:
    current = copy.deepcopy(BASE)
    del current["assets"][RAW]
    current["assets"][STG_ORDERS]["deps"] = []
    impact = _compare(current)
    assert impact.indirect == {ORDERS: [RAW, STG_ORDERS], CUSTOMERS: [RAW, STG_ORDERS], WEEKLY: [RAW, STG_ORDERS]}


def test_a_removed_column_breaks_and_is_a_modification() -> None:
    impact = _edit(STG_ORDERS, columns={"order_id": "integer", "note": None})
    assert impact.breaking == {STG_ORDERS: ["column status removed"]}
    assert impact.non_breaking == {}
    assert impact.modified == {STG_ORDERS: ["columns"]}
    assert "breaking: acme/staging/stg_orders: column status removed" in impact.describe()


def test_a_retyped_column_breaks_but_not_a_change_of_case_or_an_undeclared_type() -> None:
    impact = _edit(STG_ORDERS, columns={"order_id": "BIGINT", "status": "VARCHAR", "note": "text"})
    assert impact.breaking == {STG_ORDERS: ["column order_id retyped: integer -> BIGINT"]}


def test_an_added_column_alone_is_non_breaking() -> None:
    impact = _edit(
        STG_ORDERS, facets={"config": "c-2"}, columns={**BASE["assets"][STG_ORDERS]["columns"], "amount": "decimal"}
    )
    assert impact.breaking == {}
    assert impact.non_breaking == {STG_ORDERS: ["column amount added"]}
    assert impact.modified == {STG_ORDERS: ["YAML config", "columns"]}
    assert "non-breaking: acme/staging/stg_orders: column amount added" in impact.describe()


def test_an_added_column_next_to_a_removed_one_is_breaking_only() -> None:
    impact = _edit(STG_ORDERS, columns={"order_id": "integer", "note": None, "state": "varchar"})
    assert impact.breaking == {STG_ORDERS: ["column status removed"]}
    assert impact.non_breaking == {}


def test_columns_declared_at_one_side_only_tell_nothing() -> None:
    impact = _edit(STG_ORDERS, columns={})
    assert impact.breaking == {}
    assert impact.non_breaking == {}
    assert impact.unchanged()


def test_checks_added_and_removed_are_named_with_their_asset() -> None:
    impact = _edit(STG_ORDERS, checks=["unique_stg_orders_order_id"])
    assert impact.checks == {
        "added": ["acme/staging/stg_orders:unique_stg_orders_order_id"],
        "removed": ["acme/staging/stg_orders:not_null_stg_orders_order_id"],
    }
    assert impact.modified == {STG_ORDERS: ["checks"]}
    assert "check removed: acme/staging/stg_orders:not_null_stg_orders_order_id" in impact.describe()


def test_a_jobs_selection_change_a_job_added_and_one_removed() -> None:
    current = copy.deepcopy(BASE)
    current["jobs"] = {"daily": [CUSTOMERS, WEEKLY], "weekly": [WEEKLY]}
    impact = _compare(current)
    assert impact.jobs == {
        "daily": {"added": [WEEKLY], "removed": [ORDERS]},
        "raw_job": {"job": ["removed"], "removed": [RAW]},
        "weekly": {"added": [WEEKLY], "job": ["added"]},
    }
    assert impact.describe() == [
        "job daily: +acme/reports/weekly, -acme/marts/orders",
        "job raw_job (removed): -acme/raw/orders",
        "job weekly (added): +acme/reports/weekly",
    ]
    assert not impact.unchanged()
    assert impact.impacted() == set()


def test_a_schedules_cron_change() -> None:
    current = copy.deepcopy(BASE)
    current["schedules"]["daily_at_6"]["cron"] = "0 7 * * *"
    current["schedules"]["hourly"] = {"cron": "0 * * * *", "job": "raw_job", "assets": [RAW]}
    impact = _compare(current)
    assert impact.schedules == {
        "daily_at_6": {"cron": ["0 6 * * *", "0 7 * * *"]},
        "hourly": {"added": [RAW], "cron": ["0 * * * *"], "schedule": ["added"]},
    }
    assert impact.describe() == [
        "schedule daily_at_6: cron 0 6 * * * -> 0 7 * * *",
        "schedule hourly (added): cron 0 * * * *, +acme/raw/orders",
    ]


def test_no_change_is_unchanged_with_an_empty_summary() -> None:
    impact = _compare(copy.deepcopy(BASE))
    assert impact.unchanged()
    assert impact.summary() == {}
    assert impact.describe() == []
    assert impact.touched() == set()
    assert impact.mermaid() == ""


def test_summary_is_plain_sorted_data_without_the_base_label() -> None:
    current = _changed(**{STG_ORDERS: {"facets": {"sql": "so2"}, "columns": {"order_id": "integer"}}})
    current["jobs"]["daily"] = [CUSTOMERS]
    assert _compare(current).summary() == {
        "breaking": {STG_ORDERS: ["column note removed", "column status removed"]},
        "indirect": {CUSTOMERS: [STG_ORDERS], ORDERS: [STG_ORDERS], WEEKLY: [STG_ORDERS]},
        "jobs": {"daily": {"removed": [ORDERS]}},
        "modified": {STG_ORDERS: ["SQL", "columns"]},
    }


def test_mermaid_draws_the_impacted_subgraph_with_context_parents() -> None:
    impact = _edit(ORDERS, facets={"sql": "o2"})
    assert impact.mermaid() == (
        "flowchart LR\n"
        '  subgraph g0["marts"]\n'
        '    n0["acme/marts/customers"]\n'
        '    n1["acme/marts/orders"]\n'
        "  end\n"
        '  subgraph g1["reports"]\n'
        '    n2["acme/reports/weekly"]\n'
        "  end\n"
        '  subgraph g2["staging"]\n'
        '    n3["acme/staging/stg_customers"]\n'
        '    n4["acme/staging/stg_orders"]\n'
        "  end\n"
        "  n1 --> n0\n"
        "  n3 --> n0\n"
        "  n4 --> n1\n"
        "  n0 --> n2\n"
        "  classDef context fill:#f1f3f5,stroke:#adb5bd\n"
        "  class n3,n4 context\n"
        "  classDef indirect fill:#fff3bf,stroke:#f59f00\n"
        "  class n0,n2 indirect\n"
        "  classDef modified fill:#ffe8cc,stroke:#e8590c\n"
        "  class n1 modified\n"
    )


def test_mermaid_draws_removed_assets_from_the_base_dashed_and_added_ones_green() -> None:
    current = copy.deepcopy(BASE)
    del current["assets"][RAW]
    current["assets"][STG_ORDERS]["deps"] = []
    current["assets"]["acme/raw/orders_v2"] = _asset("python", "raw", [], {"python_code": "p9"})
    chart = compare_graphs(BASE, current, base_label="main").mermaid()
    assert "  classDef removed fill:#ffe3e3,stroke:#c92a2a,stroke-dasharray: 4 2\n" in chart
    assert "  classDef added fill:#d3f9d8,stroke:#2b8a3e\n" in chart
    ids = {line.split('["')[1][:-2]: line.split('["')[0].strip() for line in chart.splitlines() if '["' in line}
    assert f"  {ids[RAW]} --> {ids[STG_ORDERS]}\n" in chart
    assert f"  class {ids[RAW]} removed\n" in chart
    assert f"  class {ids['acme/raw/orders_v2']} added\n" in chart
    assert chart == compare_graphs(BASE, copy.deepcopy(current), base_label="other").mermaid()
