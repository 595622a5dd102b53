"""pytest_dbt_assets.diff.data on real DuckDB files: the base built in one database and
exported to Parquet, the working tree's relation in another, as the fixture will run them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pytest_dbt_assets.diff.data import DataDiff, TableDiff, diff_relation, export_relation, unique_key_columns
from pytest_dbt_assets.errors import UnknownAssetKeyError

CUSTOMERS = """
    SELECT * FROM (VALUES
        (1, 'ann', 10.50::DECIMAL(10,2), 'active'),
        (2, 'bob', 20.00::DECIMAL(10,2), 'active'),
        (3, 'cy', 30.00::DECIMAL(10,2), 'active'),
        (4, 'di', 40.00::DECIMAL(10,2), 'churned')
    ) AS t(customer_id, name, lifetime_value, status)
"""


def build(
    tmp_path: Path,
    base_sql: str | None,
    current_sql: str | None,
    key_columns: Sequence[str] = (),
    *,
    key: str = "shop/customers",
    relation: str = "customers",
    **options: Any,
) -> TableDiff:
    """Build ``base_sql`` in a base database and export it, build ``current_sql`` in the test's
    database, and diff the two (``None``: the asset does not exist on that side)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    base_parquet, base_columns = None, None
    if base_sql is not None:
        with duckdb.connect(str(tmp_path / "base.duckdb")) as base:
            base.execute(f"CREATE TABLE {relation} AS {base_sql}")
            base_parquet = tmp_path / "base export" / "customers.parquet"  # a space in the path
            base_parquet.parent.mkdir()
            base_columns = export_relation(base, relation, base_parquet)
    with duckdb.connect(str(tmp_path / "current.duckdb")) as con:
        if current_sql is not None:
            con.execute(f"CREATE TABLE {relation} AS {current_sql}")
        return diff_relation(
            con,
            key,
            relation if current_sql is not None else None,
            base_parquet,
            base_columns,
            key_columns,
            **options,
        )


def test_keyed_rows_added_removed_and_changed_with_only_the_differing_columns(tmp_path: Path) -> None:
    current = """
        SELECT * FROM (VALUES
            (5, 'ed', 50.00::DECIMAL(10,2), 'active'),
            (3, 'cy', 30.00::DECIMAL(10,2), 'churned'),
            (2, 'bob', 25.00::DECIMAL(10,2), 'active'),
            (1, 'ann', 10.50::DECIMAL(10,2), 'active')
        ) AS t(customer_id, name, lifetime_value, status)
    """
    diff = build(tmp_path, CUSTOMERS, current, ["customer_id"])

    assert (diff.rows_base, diff.rows_current) == (4, 4)
    assert (diff.added, diff.removed, diff.changed) == (1, 1, 2)
    assert diff.key_columns == ["customer_id"]
    assert diff.changed_columns == ["lifetime_value", "status"]
    assert diff.examples["added"] == [{"customer_id": 5, "name": "ed", "lifetime_value": "50.00", "status": "active"}]
    assert diff.examples["removed"] == [
        {"customer_id": 4, "name": "di", "lifetime_value": "40.00", "status": "churned"}
    ]
    assert diff.examples["changed"] == [
        {"key": {"customer_id": 2}, "before": {"lifetime_value": "20.00"}, "after": {"lifetime_value": "25.00"}},
        {"key": {"customer_id": 3}, "before": {"status": "active"}, "after": {"status": "churned"}},
    ]
    assert diff.breaking
    assert diff.describe() == "shop/customers: 2 rows changed (lifetime_value, status), 1 row added, 1 row removed"


def test_examples_are_the_first_rows_by_key_and_at_most_the_number_asked(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES (1, 'a')) AS t(id, v)"
    current = "SELECT * FROM (VALUES (9, 'x'), (1, 'a'), (4, 'y'), (7, 'z'), (2, 'w')) AS t(id, v)"

    diff = build(tmp_path, base, current, ["id"], examples=2)

    assert diff.added == 4
    assert diff.examples["added"] == [{"id": 2, "v": "w"}, {"id": 4, "v": "y"}]
    assert build(tmp_path / "none", base, current, ["id"], examples=0).examples["added"] == []


def test_whole_rows_compare_as_multisets_with_duplicates(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES ('a', 1), ('a', 1), ('b', 2)) AS t(k, v)"
    current = "SELECT * FROM (VALUES ('b', 2), ('c', 3), ('a', 1), ('b', 2)) AS t(k, v)"

    diff = build(tmp_path, base, current)

    assert diff.key_columns == []
    assert (diff.added, diff.removed, diff.changed) == (2, 1, 0)
    assert diff.examples["added"] == [{"k": "b", "v": 2}, {"k": "c", "v": 3}]
    assert diff.examples["removed"] == [{"k": "a", "v": 1}]
    assert diff.examples["changed"] == []
    assert diff.note is None


def test_a_column_added_is_non_breaking_with_no_rows_changed(tmp_path: Path) -> None:
    current = f"SELECT *, lower(name) || '@example.com' AS email FROM ({CUSTOMERS})"

    diff = build(tmp_path, CUSTOMERS, current, ["customer_id"])

    assert diff.columns_added == {"email": "VARCHAR"}
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 0)
    assert not diff.breaking
    assert not diff.unchanged()
    assert diff.describe() == "shop/customers: column email added (varchar), no rows changed (non-breaking)"


def test_a_column_removed_is_breaking_and_the_rest_still_compares(tmp_path: Path) -> None:
    current = f"SELECT customer_id, name, lifetime_value FROM ({CUSTOMERS})"

    diff = build(tmp_path, CUSTOMERS, current, ["customer_id"])

    assert diff.columns_removed == {"status": "VARCHAR"}
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 0)
    assert diff.breaking
    assert diff.describe() == "shop/customers: column status removed (varchar), no rows changed"


def test_a_date_retyped_to_timestamp_compares_equal_where_the_values_are(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES (1, DATE '2024-01-01'), (2, DATE '2024-02-01')) AS t(id, first_order)"
    current = """
        SELECT * FROM (VALUES (1, TIMESTAMP '2024-01-01 00:00:00'), (2, TIMESTAMP '2024-02-01 12:30:00'))
        AS t(id, first_order)
    """
    diff = build(tmp_path, base, current, ["id"])

    assert diff.columns_retyped == {"first_order": ["DATE", "TIMESTAMP"]}
    assert diff.changed == 1
    assert diff.examples["changed"] == [
        {
            "key": {"id": 2},
            "before": {"first_order": "2024-02-01T00:00:00"},
            "after": {"first_order": "2024-02-01T12:30:00"},
        }
    ]
    assert diff.describe() == "shop/customers: 1 row changed (first_order); column first_order: date -> timestamp"

    whole = build(tmp_path / "whole", base, current)
    assert (whole.added, whole.removed) == (1, 1)


@pytest.mark.parametrize("key_columns", [["id"], []], ids=["keyed", "whole rows"])
def test_a_base_value_that_does_not_cast_to_the_new_type_is_a_difference(
    tmp_path: Path, key_columns: list[str]
) -> None:
    base = "SELECT * FROM (VALUES (1, '7'), (2, 'n/a')) AS t(id, code)"
    current = "SELECT * FROM (VALUES (1, 7), (2, NULL)) AS t(id, code)"

    diff = build(tmp_path, base, current, key_columns)

    assert diff.columns_retyped == {"code": ["VARCHAR", "INTEGER"]}
    if key_columns:
        assert diff.changed == 1
        assert diff.examples["changed"] == [{"key": {"id": 2}, "before": {"code": "n/a"}, "after": {"code": None}}]
    else:
        assert (diff.added, diff.removed) == (1, 1)
        assert diff.examples["removed"] == [{"id": 2, "code": "n/a"}]
        assert diff.examples["added"] == [{"id": 2, "code": None}]


def test_a_retyped_key_matches_after_the_cast_and_an_uncast_key_matches_nothing(tmp_path: Path) -> None:
    """The base key 'x' does not cast to INTEGER: it is not the current NULL key, though both read as NULL."""
    base = "SELECT * FROM (VALUES ('1', 'a'), ('x', 'b')) AS t(id, v)"
    current = "SELECT * FROM (VALUES (1, 'a'), (NULL, 'b')) AS t(id, v)"

    diff = build(tmp_path, base, current, ["id"])

    assert diff.columns_retyped == {"id": ["VARCHAR", "INTEGER"]}
    assert (diff.added, diff.removed, diff.changed) == (1, 1, 0)
    assert diff.examples["removed"] == [{"id": "x", "v": "b"}]
    assert diff.examples["added"] == [{"id": None, "v": "b"}]


def test_a_null_changed_to_a_value_counts_as_changed_and_null_to_null_does_not(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES (1, NULL::VARCHAR, NULL::INTEGER), (2, 'x', NULL)) AS t(id, a, b)"
    current = "SELECT * FROM (VALUES (1, 'now set', NULL::INTEGER), (2, 'x', NULL)) AS t(id, a, b)"

    diff = build(tmp_path, base, current, ["id"])

    assert diff.changed == 1
    assert diff.changed_columns == ["a"]
    assert diff.examples["changed"] == [{"key": {"id": 1}, "before": {"a": None}, "after": {"a": "now set"}}]


@pytest.mark.parametrize("side", ["base", "current"])
def test_a_duplicate_key_falls_back_to_whole_rows_and_says_so(tmp_path: Path, side: str) -> None:
    unique = "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, v)"
    duplicated = "SELECT * FROM (VALUES (1, 'a'), (1, 'c'), (2, 'b')) AS t(id, v)"
    base, current = (duplicated, unique) if side == "base" else (unique, duplicated)

    diff = build(tmp_path, base, current, ["id"])

    assert diff.key_columns == []
    assert diff.note == f"duplicate key (id) in {side}: compared as whole rows"
    assert diff.changed == 0
    assert (diff.added, diff.removed) == ((0, 1) if side == "base" else (1, 0))
    assert diff.describe().endswith(
        f"; duplicate key (id) in {side}: compared as whole rows" + ("" if side == "base" else " (non-breaking)")
    )
    assert diff.summary()["note"] == diff.note


def test_a_key_column_missing_on_one_side_falls_back_to_whole_rows(tmp_path: Path) -> None:
    diff = build(tmp_path, CUSTOMERS, f"SELECT name, lifetime_value, status FROM ({CUSTOMERS})", ["customer_id"])

    assert diff.key_columns == []
    assert diff.note == "key column customer_id not on both sides: compared as whole rows"
    assert (diff.added, diff.removed) == (0, 0)


def test_a_key_named_in_lower_case_matches_snowflakes_upper_case_columns(tmp_path: Path) -> None:
    upper = f"SELECT customer_id AS CUSTOMER_ID, name AS NAME, lifetime_value AS LIFETIME_VALUE FROM ({CUSTOMERS})"
    changed = upper.replace("lifetime_value AS", "lifetime_value + 1 AS")
    diff = build(tmp_path, upper, changed, ["customer_id"])

    assert diff.key_columns == ["CUSTOMER_ID"] and diff.note is None
    assert (diff.changed, diff.added, diff.removed) == (4, 0, 0)


def test_a_new_asset_and_a_removed_one(tmp_path: Path) -> None:
    new = build(tmp_path / "new", None, "SELECT range AS id FROM range(5)", ["id"], key="stg_new", examples=2)
    removed = build(tmp_path / "old", "SELECT range AS id FROM range(12)", None, key="old_model")

    assert (new.rows_base, new.rows_current, new.added, new.status) == (None, 5, 5, "new")
    assert new.examples["added"] == [{"id": 0}, {"id": 1}]
    assert new.describe() == "stg_new: new asset (5 rows)"
    assert not new.breaking
    assert (removed.rows_base, removed.rows_current, removed.removed, removed.status) == (12, None, 12, "removed")
    assert removed.describe() == "old_model: removed (was 12 rows)"
    assert removed.breaking
    with pytest.raises(ValueError, match="neither a current relation nor a base Parquet file"):
        build(tmp_path / "neither", None, None)


def test_columns_with_spaces_and_upper_case_are_quoted(tmp_path: Path) -> None:
    base = """SELECT * FROM (VALUES (1, 'x', 2), (2, 'y', 3)) AS t("Customer ID", "Full Name", "Order""s")"""
    current = """SELECT * FROM (VALUES (1, 'x', 2), (2, 'Y', 3)) AS t("Customer ID", "Full Name", "Order""s")"""

    diff = build(tmp_path, base, current, ["Customer ID"], relation='"Raw Customers"', profile=True)

    assert diff.examples["changed"] == [
        {"key": {"Customer ID": 2}, "before": {"Full Name": "y"}, "after": {"Full Name": "Y"}}
    ]
    assert diff.profiles is not None and sorted(diff.profiles) == ["Customer ID", "Full Name", 'Order"s']


def test_an_unchanged_relation_and_types_parquet_cannot_hold(tmp_path: Path) -> None:
    """An ENUM is VARCHAR in Parquet: the exported types keep it, so it is neither retyped nor changed."""
    sql = "SELECT range AS id, (CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END)::ENUM('a', 'b') AS kind FROM range(99)"

    diff = build(tmp_path, sql, sql, ["id"], key="orders")

    assert diff.unchanged()
    assert not diff.columns_retyped
    assert diff.describe() == "orders: unchanged (99 rows)"
    assert diff.summary() == {"rows": {"base": 99, "current": 99}, "status": "unchanged"}


def test_export_relation_returns_the_types_in_column_order(tmp_path: Path) -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 'x' AS zeta, 1.5::DECIMAL(8,3) AS alpha, DATE '2024-01-01' AS mid")
        types = export_relation(con, "t", tmp_path / "t.parquet")
        assert list(types.items()) == [("zeta", "VARCHAR"), ("alpha", "DECIMAL(8,3)"), ("mid", "DATE")]
        assert con.execute(f"SELECT * FROM read_parquet('{tmp_path / 't.parquet'}')").fetchall()[0][0] == "x"


def test_profiles_only_when_asked_with_both_sides(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES (1, 5), (2, NULL), (3, 5)) AS t(id, score)"
    current = "SELECT * FROM (VALUES (1, 5), (2, 7), (3, 9)) AS t(id, score)"

    assert build(tmp_path / "plain", base, current, ["id"]).profiles is None
    diff = build(tmp_path / "profiled", base, current, ["id"], profile=True)

    assert diff.profiles is not None
    assert diff.profiles["score"] == {
        "base": {"nulls": 1, "distinct": 1, "min": 5, "max": 5},
        "current": {"nulls": 0, "distinct": 3, "min": 5, "max": 9},
    }
    assert diff.summary()["profiles"] == diff.profiles


SPEC_EXAMPLE_BASE = """
    SELECT * FROM (VALUES
        (1, DATE '2024-01-01', 10.0), (2, DATE '2024-01-02', 20.0), (3, DATE '2024-01-03', 30.0), (4, NULL, 40.0)
    ) AS t(customer_id, first_order, lifetime_value)
"""
SPEC_EXAMPLE_CURRENT = """
    SELECT * FROM (VALUES
        (1, TIMESTAMP '2024-01-01', 11.0), (2, TIMESTAMP '2024-01-02', 21.0), (3, TIMESTAMP '2024-01-03', 31.0),
        (4, NULL, 40.0), (5, TIMESTAMP '2024-01-05 08:00', 50.0)
    ) AS t(customer_id, first_order, lifetime_value)
"""


def test_describe_tells_the_diff_in_words(tmp_path: Path) -> None:
    diff = build(tmp_path, SPEC_EXAMPLE_BASE, SPEC_EXAMPLE_CURRENT, ["customer_id"], key="customers")

    assert (
        diff.describe()
        == "customers: 3 rows changed (lifetime_value), 1 row added; column first_order: date -> timestamp"
    )


def test_summary_is_json_able_sorted_and_the_same_on_every_run(tmp_path: Path) -> None:
    base = "SELECT * FROM (VALUES (1, DATE '2024-01-01', 1.25::DECIMAL(6,2), 0.1::DOUBLE)) AS t(id, d, m, f)"
    current = """
        SELECT * FROM (VALUES (1, DATE '2024-01-02', 1.25::DECIMAL(6,2), 0.1::DOUBLE),
                              (2, DATE '2024-03-04', 9.99::DECIMAL(6,2), 'nan'::DOUBLE)) AS t(id, d, m, f)
    """
    first = build(tmp_path / "1", base, current, ["id"], profile=True)
    second = build(tmp_path / "2", base, current, ["id"], profile=True)
    diff = DataDiff(base="origin/main (1a2b3c4)", tables={"z/last": second, "a/first": first})

    text = json.dumps(diff.summary())  # raises on a value JSON cannot hold
    assert text == json.dumps(diff.summary(), sort_keys=True)
    assert diff.summary()["assets"]["a/first"] == diff.summary()["assets"]["z/last"]
    assert diff.summary()["base"] == "origin/main"
    assert first.summary() == {
        "added": 1,
        "breaking": True,
        "changed": 1,
        "changed_columns": ["d"],
        "examples": {
            "added": [{"d": "2024-03-04", "f": "nan", "id": 2, "m": "9.99"}],
            "changed": [{"after": {"d": "2024-01-02"}, "before": {"d": "2024-01-01"}, "key": {"id": 1}}],
        },
        "key_columns": ["id"],
        "profiles": first.summary()["profiles"],
        "rows": {"base": 1, "current": 2},
        "status": "changed",
    }
    assert first.summary()["profiles"]["m"]["current"] == {"distinct": 2, "max": "9.99", "min": "1.25", "nulls": 0}


def test_a_data_diff_is_sorted_by_key_and_looked_up_by_it(tmp_path: Path) -> None:
    same = build(tmp_path / "same", CUSTOMERS, CUSTOMERS, ["customer_id"], key="b/orders")
    new = build(tmp_path / "new", None, CUSTOMERS, key="a/new")
    diff = DataDiff(base="origin/main (1a2b3c4)", tables={"b/orders": same, "a/new": new})

    assert list(diff.tables) == ["a/new", "b/orders"]
    assert diff.describe() == ["a/new: new asset (4 rows)", "b/orders: unchanged (4 rows)"]
    assert str(diff) == "a/new: new asset (4 rows)\nb/orders: unchanged (4 rows)"
    assert diff.changed() == {"a/new": new}
    assert diff["b/orders"] is same
    with pytest.raises(
        UnknownAssetKeyError, match="no data diff for asset 'c/missing'; the diff compared: a/new, b/orders"
    ):
        diff["c/missing"]
    with pytest.raises(KeyError):
        diff["c/missing"]


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
