"""pytest_dbt_assets.selection on real Dagster definitions (Python assets only: no dbt run)."""

from __future__ import annotations

import dagster as dg
import pytest

from pytest_dbt_assets.errors import PartitionKeyError, SelectionError
from pytest_dbt_assets.selection import (
    INDIRECT_SELECTION_VALUES,
    _dbt_error_text,
    describe_partitions,
    resolve_selection,
    validate_indirect_selection,
    validate_unpartitioned,
)


@pytest.mark.parametrize("value", [None, *INDIRECT_SELECTION_VALUES])
def test_dbts_indirect_selection_values_pass(value: str | None) -> None:
    validate_indirect_selection(value)


def test_other_indirect_selection_is_refused_with_the_values() -> None:
    with pytest.raises(SelectionError) as excinfo:
        validate_indirect_selection("Eager")
    message = str(excinfo.value)
    assert message.startswith("indirect_selection='Eager' is not one of dbt's values: ")
    assert "'eager', 'cautious', 'buildable', 'empty'" in message
    assert "pass 'cautious'" in message


@pytest.mark.parametrize(
    ("keys", "described"),
    [
        ([], "none yet"),
        (["a"], "a"),
        (["a", "b", "c", "d"], "a, b, c, d"),
        (["a", "b", "c", "d", "e"], "a, b, ..., e (5 in all)"),
    ],
)
def test_describe_static_partitions(keys: list[str], described: str) -> None:
    assert describe_partitions(dg.StaticPartitionsDefinition(keys)) == described


def test_describe_dynamic_partitions() -> None:
    assert describe_partitions(dg.DynamicPartitionsDefinition(name="customers")) == (
        "DynamicPartitionsDefinition (keys known at run time only)"
    )


def _defs() -> dg.Definitions:
    days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-08")

    @dg.asset
    def plain() -> None: ...

    @dg.asset(partitions_def=days, deps=[plain])
    def daily() -> None: ...

    @dg.asset(partitions_def=days, deps=[daily])
    def also_daily() -> None: ...

    return dg.Definitions(assets=[plain, daily, also_daily])


def test_unpartitioned_selection_passes() -> None:
    validate_unpartitioned(_defs(), {dg.AssetKey("plain")})


def test_partitioned_selection_without_a_key_names_assets_and_partitions() -> None:
    defs = _defs()
    with pytest.raises(PartitionKeyError) as excinfo:
        validate_unpartitioned(defs, {dg.AssetKey("daily"), dg.AssetKey("also_daily"), dg.AssetKey("plain")})
    assert str(excinfo.value) == (
        "also_daily, daily are partitioned, and no partition_key was given. Pass partition_key= to "
        "dbt_assets_materialize, e.g. dbt_assets_materialize(..., partition_key='2024-01-07'). "
        "Partitions of also_daily: 2024-01-01, 2024-01-02, ..., 2024-01-07 (7 in all)."
    )


def test_resolve_selection() -> None:
    defs = _defs()
    every = {dg.AssetKey("plain"), dg.AssetKey("daily"), dg.AssetKey("also_daily")}
    assert resolve_selection(defs) == every
    assert resolve_selection(defs, select="plain") == {dg.AssetKey("plain")}
    assert resolve_selection(defs, select="+daily") == {dg.AssetKey("plain"), dg.AssetKey("daily")}
    assert resolve_selection(defs, select=[dg.AssetKey("daily")]) == {dg.AssetKey("daily")}


def test_selection_matching_nothing_lists_the_keys() -> None:
    with pytest.raises(SelectionError) as excinfo:
        resolve_selection(_defs(), select="key:nope")
    assert str(excinfo.value) == (
        "select='key:nope' matches no materializable asset. Known keys: also_daily, daily, plain"
    )


def test_dbt_select_without_dbt_assets() -> None:
    with pytest.raises(
        SelectionError, match=r"dbt_select='\+customers' given, but the definitions hold no @dbt_assets"
    ):
        resolve_selection(_defs(), dbt_select=["+customers"])


def test_dbt_error_text_drops_the_heading() -> None:
    assert _dbt_error_text(RuntimeError("Runtime Error\n  'x' is not a valid method.\n")) == "'x' is not a valid method"
    assert _dbt_error_text(RuntimeError("one line.")) == "one line"
