"""A partitioned DbtProjectComponent whose `cli_args` are templated with the partition (issue
13): the partition a test asks for reaches dbt through the component's own templating, as in
production, and the test's own `vars=` still win."""

from __future__ import annotations

import pytest

from tests.repos import dg_files, write_files

pytestmark = pytest.mark.e2e

PARTITIONED_COMPONENT_YAML = """
    type: dagster_dbt.DbtProjectComponent

    attributes:
      project: '{{ context.project_root }}/shop'
      cli_args:
        - build
        - --vars:
            customer: "{{ partition_key }}"
      translation:
        partitions_def:
          type: static
          partition_keys: ["1", "2", "3"]
"""

PARTITION_TESTS = """
    import pytest

    from pytest_dbt_assets.errors import PartitionKeyError


    def test_the_partition_reaches_dbt_through_cli_args(dbt_assets_materialize):
        # customer 1 has orders 10 and 11, customer 3 has order 13 (shop/seeds/raw_orders.csv).
        assert dbt_assets_materialize(dbt_select="+orders", partition_key="1").row_counts["orders"] == 2
        assert dbt_assets_materialize(dbt_select="+orders", partition_key="3").row_counts["orders"] == 1


    def test_the_test_vars_win_over_the_templated_vars(dbt_assets_materialize):
        result = dbt_assets_materialize(dbt_select="+orders", partition_key="1", vars={"customer": 2})
        assert result.row_counts["orders"] == 1


    def test_no_partition_key_names_the_partitions(dbt_assets_materialize):
        with pytest.raises(PartitionKeyError, match="partition_key"):
            dbt_assets_materialize(dbt_select="+orders")
"""


def test_cli_args_templated_with_the_partition(pytester: pytest.Pytester) -> None:
    files = dg_files(PARTITIONED_COMPONENT_YAML)
    files["shop/models/marts/orders.sql"] = (
        "select * from {{ ref('stg_orders') }} where customer_id = {{ var('customer', 0) }}"
    )
    del files["src/shop_dg/defs/scores.py"]
    write_files(pytester.path, {**files, "tests/test_partitions.py": PARTITION_TESTS})
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
