"""isolation.py: the dbt flags that would point dbt elsewhere, read as dbt reads its params."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["seed", "--profiles-dir", "shop", "--target", "prod"], ["--profiles-dir", "--target"]),
        (["seed", "--target=prod"], ["--target=prod"]),
        (["seed", "-tprod"], ["-tprod"]),
        (["run", "-xt", "prod"], ["-xt"]),
        (["source", "freshness", "--project-dir=shop"], ["--project-dir=shop"]),
        (["run", "--select", "--target", "prod"], ["--target"]),  # never taken for a value
        (["run", "-sstg_t", "--full-refresh"], []),  # `-s` value, not a `-t`
        (["run", "--state", "prod_artifacts", "--defer", "--favor-state"], []),
        (["run-operation", "grant", "--args", "{role: -t}"], []),
        (["debug", "--config-dir"], []),
    ],
)
def test_redirecting_flags_are_read_from_dbt_params(args: list[str], refused: list[str]) -> None:
    from pytest_dbt_assets.isolation import find_redirecting_flags

    assert [token for token, _ in find_redirecting_flags(args)] == refused
