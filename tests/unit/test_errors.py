"""Errors users meet outside a dbt run: from the plugin's hierarchy, and still the builtin
exception they were before it (code that catches KeyError / TypeError keeps working)."""

from __future__ import annotations

import pytest

from pytest_dbt_assets.errors import DbtAssetsError, SnapshotDataError, UnknownAssetKeyError
from pytest_dbt_assets.graph import AssetGraph
from pytest_dbt_assets.snapshot import render

GRAPH = AssetGraph(
    keys=["acme/marts/customers", "raw/orders"],
    deps={"acme/marts/customers": ["raw/orders"], "raw/orders": []},
    groups={"acme/marts/customers": "marts", "raw/orders": "raw"},
)


def test_unknown_graph_key() -> None:
    with pytest.raises(UnknownAssetKeyError) as excinfo:
        GRAPH.upstream("acme/marts/customer")
    assert isinstance(excinfo.value, KeyError)
    assert isinstance(excinfo.value, DbtAssetsError)
    # not quoted as KeyError would: the message reads as written
    assert str(excinfo.value) == (
        "'acme/marts/customer' is not an asset key of dbt_asset_graph. Did you mean acme/marts/customers? "
        "Keys are user strings with '/' between the parts of the Dagster asset key, as your translator "
        "makes them (e.g. 'acme/marts/customers'); dbt_asset_graph.keys lists them all."
    )
    with pytest.raises(KeyError):
        GRAPH.downstream("customers")


def test_snapshot_of_a_framework_object() -> None:
    with pytest.raises(SnapshotDataError) as excinfo:
        render({"graph": object()})
    assert isinstance(excinfo.value, TypeError)
    assert isinstance(excinfo.value, DbtAssetsError)
    assert str(excinfo.value).startswith("dbt_assets_snapshot cannot serialize a object: give it the asset graph")
