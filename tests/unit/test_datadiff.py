"""pytest_dbt_assets.diff: a model's unique key read from a hand-written manifest."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dbt_assets.diff.keys import unique_key_columns

MODEL = "model.shop.customers"


def _test(name: str, kwargs: dict[str, Any], *, attached: str = MODEL, where: str | None = None) -> dict[str, Any]:
    """A generic test node as dbt writes it into the manifest."""
    return {
        "resource_type": "test",
        "attached_node": attached,
        "depends_on": {"nodes": [attached]},
        "config": {"where": where},
        "test_metadata": {"name": name, "kwargs": {"model": "{{ get_where_subquery(ref('customers')) }}", **kwargs}},
    }


def _manifest(*tests: dict[str, Any], model: dict[str, Any] | None = None) -> dict[str, Any]:
    nodes: dict[str, Any] = {MODEL: {"resource_type": "model", "columns": {}, "constraints": [], **(model or {})}}
    nodes.update({f"test.shop.t{i}": test for i, test in enumerate(tests)})
    return {"nodes": nodes}


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (_manifest(_test("unique", {"column_name": "customer_id"})), ["customer_id"]),
        (_manifest(_test("unique", {"column_name": "z_id"}), _test("unique", {"column_name": "a_id"})), ["a_id"]),
        (_manifest(_test("unique", {"column_name": '"Customer ID"'})), ["Customer ID"]),
        (_manifest(_test("unique", {"column_name": "lower(email)"})), []),
        (_manifest(_test("unique", {"column_name": "customer_id"}, where="status = 'active'")), []),
        (_manifest(_test("unique", {"column_name": "customer_id"}, attached="model.shop.orders")), []),
        (_manifest(_test("not_null", {"column_name": "customer_id"})), []),
        (
            _manifest(
                _test("unique_combination_of_columns", {"combination_of_columns": ["region", "customer_id", "day"]}),
                _test("unique_combination_of_columns", {"combination_of_columns": ["region", "customer_id"]}),
            ),
            ["region", "customer_id"],
        ),
        (
            _manifest(
                _test("unique_combination_of_columns", {"combination_of_columns": ["region", "customer_id"]}),
                _test("unique", {"column_name": "customer_id"}),
            ),
            ["customer_id"],
        ),
        (_manifest(model={"constraints": [{"type": "primary_key", "columns": ["region", "id"]}]}), ["region", "id"]),
        (
            _manifest(
                model={
                    "columns": {
                        "region": {"constraints": [{"type": "not_null"}]},
                        "id": {"constraints": [{"type": "not_null"}, {"type": "primary_key"}]},
                    }
                }
            ),
            ["id"],
        ),
        (_manifest(), []),
    ],
    ids=[
        "unique test",
        "several unique tests: first column",
        "quoted column",
        "expression",
        "unique with where",
        "another model's test",
        "not_null only",
        "dbt_utils combination: fewest columns",
        "unique before combination",
        "model-level primary_key",
        "column-level primary_key",
        "none",
    ],
)
def test_unique_key_columns_from_the_manifest(manifest: dict[str, Any], expected: list[str]) -> None:
    assert unique_key_columns(manifest, MODEL) == expected


def test_unique_key_columns_without_attached_node_uses_the_only_dependency() -> None:
    """Manifests before dbt 1.5 have no ``attached_node``; a relationships test depends on two nodes."""
    unique = _test("unique", {"column_name": "id"})
    relationships = _test("unique", {"column_name": "other_id"})
    del unique["attached_node"], relationships["attached_node"]
    relationships["depends_on"]["nodes"] = ["model.shop.orders", MODEL]

    assert unique_key_columns(_manifest(relationships, unique), MODEL) == ["id"]
    assert unique_key_columns(_manifest(relationships), MODEL) == []
