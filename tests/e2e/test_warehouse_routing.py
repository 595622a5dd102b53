"""The team's Python resources reach the test database with no override on DuckDB, and a
connection anywhere else is refused, naming the call and the override (end-to-end, nested
pytest on the shop repo)."""

from __future__ import annotations

import pytest

from tests.repos import SHOP_DAGSTER_FILES, write_files

pytest.importorskip("dagster_duckdb")
pytest.importorskip("dagster_duckdb_pandas")

pytestmark = pytest.mark.e2e

RESOURCES = """
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasIOManager

# The production warehouse: the same file shop/profiles.yml's prod target writes.
PROD = str(project.project_dir / "prod.duckdb")


@dg.asset(deps=[get_asset_key_for_model([shop_dbt_assets], "customers")])
def scores(warehouse: DuckDBResource):
    with warehouse.get_connection() as conn:
        conn.execute("create or replace table main.scores as select customer_id, orders * 10 as score from customers")
        count = conn.execute("select count(*) from main.scores").fetchone()[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": count})


@dg.asset(deps=[scores])
def audit(audit_db: DuckDBResource):
    with audit_db.get_connection() as conn:
        count = conn.execute("select count(*) from main.scores").fetchone()[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": count})


@dg.asset(io_manager_key="frames", key_prefix=["analytics"], deps=[scores])
def score_frame() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1, 2], "score": [10, 20]})


@dg.asset
def elsewhere():
    duckdb.connect(str(project.project_dir.parent / "elsewhere.duckdb"))


@dg.asset
def motherduck():
    duckdb.connect("md:analytics")


defs = dg.Definitions(
    assets=[shop_dbt_assets, scores, audit, score_frame, elsewhere, motherduck],
    resources={
        "dbt": DbtCliResource(project_dir=project),
        "warehouse": DuckDBResource(database=PROD),
        "audit_db": DuckDBResource(database=dg.EnvVar("AUDIT_DUCKDB_PATH")),
        "frames": DuckDBPandasIOManager(database=PROD),
    },
)
"""


def _write_repo(pytester: pytest.Pytester) -> None:
    definitions = SHOP_DAGSTER_FILES["shop_dagster/definitions.py"]
    definitions = definitions[: definitions.index("        defs = dg.Definitions(")]
    import textwrap

    write_files(
        pytester.path, {"shop_dagster/definitions.py": textwrap.dedent(definitions) + textwrap.dedent(RESOURCES)}
    )


def test_python_assets_reach_the_test_database_without_an_override(
    shop_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_repo(shop_repo)
    monkeypatch.delenv("AUDIT_DUCKDB_PATH", raising=False)  # a pull request's CI has no secrets
    shop_repo.makepyfile(
        test_scores="""
            from dagster import AssetSelection

            def test_scores(dbt_assets_materialize, dbt_assets_project):
                result = dbt_assets_materialize(AssetSelection.assets("audit", "analytics/score_frame").upstream())
                assert result.row_counts["scores"] == result.row_counts["audit"] == 3
                assert dbt_assets_project.query("select max(score) from main.scores") == [(20,)]
                # dagster-duckdb-pandas' I/O manager, pointed at the production file, wrote here.
                assert dbt_assets_project.query("select sum(score) from analytics.score_frame") == [(30,)]
        """
    )
    shop_repo.inline_run().assertoutcome(passed=1)
    assert not (shop_repo.path / "shop" / "prod.duckdb").exists()


@pytest.mark.parametrize(
    ("asset", "said"),
    [
        ("elsewhere", "elsewhere.duckdb') during a materialization: it is outside the test's temporary folder"),
        ("motherduck", "duckdb.connect('md:analytics') during a materialization: it is MotherDuck"),
    ],
)
def test_a_connection_anywhere_else_is_refused(shop_repo: pytest.Pytester, asset: str, said: str) -> None:
    _write_repo(shop_repo)
    shop_repo.makepyfile(
        test_other=f"""
            def test_other(dbt_assets_materialize):
                result = dbt_assets_materialize("{asset}", raise_on_error=False)
                assert result.failures == [result.failures[0]]
                print("FAILURE:", result.failures[0])
        """
    )
    result = shop_repo.runpytest("-s")
    result.assert_outcomes(passed=1)
    failure = next(line for line in result.outlines if "FAILURE:" in line)
    assert said in failure
    assert "dbt_assets_resources" in failure
    assert not (shop_repo.path / "elsewhere.duckdb").exists()
