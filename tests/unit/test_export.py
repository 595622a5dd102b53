"""The graph record a comparison reads: each asset's facets, from real Dagster definitions and
hand-written dbt nodes."""

from __future__ import annotations

from typing import Any

import dagster as dg

from pytest_dbt_assets.diff.export import dbt_facets, declared_columns, export_graph
from pytest_dbt_assets.graph import build_asset_graph


def _model(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "unique_id": "model.shop.orders",
        "resource_type": "model",
        "checksum": {"name": "sha256", "checksum": "abc"},
        "config": {"materialized": "table"},
        "description": "",
        "columns": {"order_id": {"data_type": "integer"}, "status": {}},
        "depends_on": {"macros": ["macro.shop.cents"]},
    }
    node.update(changes)
    return node


MACROS = {
    "macro.shop.cents": {"macro_sql": "{{ x }} * 100", "depends_on": {"macros": ["macro.shop.round"]}},
    "macro.shop.round": {"macro_sql": "round({{ x }})", "depends_on": {"macros": []}},
}


def test_each_part_of_a_dbt_node_moves_its_own_facet() -> None:
    base = dbt_facets(_model(), MACROS)
    assert set(base) == {"sql", "config", "macros"}
    assert dbt_facets(_model(checksum={"checksum": "def"}), MACROS) == {**base, "sql": "def"}
    changed_yaml = dbt_facets(_model(config={"materialized": "view"}), MACROS)
    assert {name for name in base if base[name] != changed_yaml[name]} == {"config"}
    # A macro the node's macro calls: followed through.
    deeper = {**MACROS, "macro.shop.round": {"macro_sql": "floor({{ x }})", "depends_on": {"macros": []}}}
    assert {name for name in base if base[name] != dbt_facets(_model(), deeper)[name]} == {"macros"}


def test_a_seed_has_a_seed_facet_and_declared_columns_keep_their_types() -> None:
    assert "seed" in dbt_facets(_model(resource_type="seed", depends_on={}), {})
    assert declared_columns(_model()) == {"order_id": "integer", "status": None}


def test_python_assets_record_their_code_and_code_version_and_spec() -> None:
    @dg.asset(code_version="v1", description="orders as the shop sees them")
    def orders() -> None: ...

    @dg.asset(deps=[orders], owners=["team:data"])
    def report() -> None: ...

    source = dg.AssetSpec("landing")
    defs = dg.Definitions(assets=[orders, report, source])
    record = export_graph(defs, build_asset_graph(defs))

    assert record["format"] == 1
    assert record["assets"]["orders"]["kind"] == "python"
    assert record["assets"]["orders"]["facets"]["code_version"] == "v1"
    assert "code_version" not in record["assets"]["report"]["facets"]
    assert record["assets"]["report"]["deps"] == ["orders"]
    assert set(record["assets"]["report"]["facets"]) == {"python_code", "spec"}
    assert record["assets"]["landing"]["kind"] == "external"
    assert record["assets"]["orders"]["facets"]["python_code"] != record["assets"]["report"]["facets"]["python_code"]

    @dg.asset(name="report", deps=[orders], owners=["team:finance"])
    def report_of_finance() -> None: ...  # the same asset with another owner

    again = export_graph(dg.Definitions(assets=[orders, report_of_finance, source]), build_asset_graph(defs))
    assert again["assets"]["report"]["facets"]["spec"] != record["assets"]["report"]["facets"]["spec"]
    assert again["assets"]["orders"] == record["assets"]["orders"]
