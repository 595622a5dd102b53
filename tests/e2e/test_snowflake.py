"""A Snowflake team's repo as it is, tested as the README says: dbt-snowflake's own macros on
the emulator, the team's SnowflakeResource routed to the test database with or without
secrets, a real login refused, and nothing written outside basetemp and target/.

End-to-end: each test runs pytest on a user repo written here; the team's repo as it is in a
fresh interpreter (the way the team runs it, `-n 2` too), the other cases in this process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

from tests.repos import SNOWFLAKE_SECRETS, SNOWFLAKE_SHOP_FILES, run_pytest, write_files

pytest.importorskip("fakesnow")
pytest.importorskip("dagster_snowflake")

pytestmark = pytest.mark.e2e

TEAM_TESTS = """
    from dagster import AssetSelection


    def test_graph(dbt_asset_graph, dbt_assets_snapshot):
        assert dbt_asset_graph.upstream("stg_orders") == {"raw/orders"}
        assert dbt_asset_graph == dbt_assets_snapshot


    def test_report(dbt_assets_materialize, dbt_assets_project, dbt_assets_snapshot):
        result = dbt_assets_materialize(AssetSelection.assets("revenue_report").upstream())
        assert result.row_counts["customer_orders"] == 3
        assert result.row_counts["revenue_report"] == 2
        assert dbt_assets_project.query("select count(*) from ANALYTICS.PUBLIC.CUSTOMER_ORDERS") == [(3,)]
        assert dbt_assets_project.query("select iff(count(*) > 2, 'many', 'few') from customer_orders") == [("many",)]
        assert result.summary(columns=True) == dbt_assets_snapshot


    def test_incremental_and_snapshot_twice(dbt_assets_materialize, dbt_assets_snapshot):
        first = dbt_assets_materialize()
        second = dbt_assets_materialize(dbt_select="latest_orders customers_snapshot")
        assert second.row_counts == {"customers_snapshot": 3, "latest_orders": 3}
        assert {"first": first.summary(), "second": second.summary()} == dbt_assets_snapshot


    def test_flatten_reads_the_test_rows(dbt_assets_materialize, dbt_assets_project):
        dbt_assets_materialize(dbt_select="stg_events")
        assert dbt_assets_project.query("select tag from stg_events order by tag") == [("a",), ("b",), ("c",)]
"""


def _tree_digest(root: Path, skipped: set[str]) -> str:
    """A hash of every file under ``root`` but those under the top-level folders ``skipped``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if relative.parts[0] in skipped or "target" in relative.parts or "__pycache__" in relative.parts:
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _environment(secrets: bool) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SNOWFLAKE_")}
    if secrets:
        env.update(SNOWFLAKE_SECRETS)
    return env


# Each value of each axis once: no secrets in one process, secrets under xdist (each case is two
# fresh-interpreter sessions on fakesnow; the crossed pairs are in tests/MOVED.md).
@pytest.mark.parametrize(("secrets", "workers"), [(False, "0"), (True, "2")], ids=["no-secrets-0", "with-secrets-2"])
def test_snowflake_team_repo_passes_as_it_is(tmp_path: Path, workers: str, secrets: bool) -> None:
    repo = tmp_path / "repo"
    write_files(repo, {**SNOWFLAKE_SHOP_FILES, "tests/test_shop.py": TEAM_TESTS})
    before = _tree_digest(repo, {"tests"})
    env = {**_environment(secrets), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    first = run_pytest(repo, "-n", workers, "--snapshot-update", f"--basetemp={tmp_path / 'base'}", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "4 passed" in first.stdout, first.stdout
    assert _tree_digest(repo, {"tests"}) == before  # nothing written but snapshots and target/
    # fakesnow makes a stage folder in TMPDIR when imported, one a process: none is left.
    assert not [path.name for path in (tmp_path / "tmp").iterdir() if path.name.startswith("fakesnow")]
    snapshots = repo / "tests" / "__snapshots__" / "test_shop"
    report = (snapshots / "test_report.yaml").read_text()
    assert "CUSTOMER_NAME: VARCHAR" in report and "rows: 3" in report
    twice = (snapshots / "test_incremental_and_snapshot_twice.yaml").read_text()
    assert "latest_orders:\n      rows: 3" in twice, twice
    # A second run compares against the snapshots the first wrote.
    again = run_pytest(repo, "-n", workers, f"--basetemp={tmp_path / 'base2'}", env=_environment(secrets))
    assert again.returncode == 0, again.stdout + again.stderr


REFUSED_LOGIN = """
    import dagster as dg
    import snowflake.connector


    @dg.asset
    def sneaky():
        snowflake.connector.SnowflakeConnection(
            account="acme-prod", user="svc", password="x", host="acme-prod.snowflakecomputing.com"
        )


    defs = dg.Definitions(assets=[sneaky])
"""


def test_a_real_snowflake_login_during_a_materialization_is_refused(
    snowflake_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process: the guard is the session's, and this process has imported the connector
    # before (as a user's conftest does); the team's own repo runs fresh above.
    for name, value in SNOWFLAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    files = {
        "shop_dagster/sneaky.py": REFUSED_LOGIN,
        "tests/test_sneaky.py": """
            import pytest

            @pytest.mark.dbt_assets(select="sneaky")
            def test_sneaky(dbt_assets_materialize):
                result = dbt_assets_materialize(raise_on_error=False)
                assert not result.success
                assert len(result.failures) == 1
                print("FAILURE:", result.failures[0])
        """,
        "pyproject.toml": SNOWFLAKE_SHOP_FILES["pyproject.toml"].replace("definitions:defs", "sneaky:defs"),
    }
    write_files(snowflake_repo.path, files)
    result = snowflake_repo.runpytest("-s", "tests/test_sneaky.py")
    result.assert_outcomes(passed=1)
    failure = next(line for line in result.outlines if "FAILURE:" in line)
    assert "refused a login to the Snowflake account 'acme-prod' at acme-prod.snowflakecomputing.com" in failure
    assert "dbt_assets_resources" in failure


@pytest.fixture
def snowflake_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The Snowflake team's repo in the pytester folder, run with no SNOWFLAKE_* set."""
    for name in list(os.environ):
        if name.startswith("SNOWFLAKE_"):
            monkeypatch.delenv(name)
    write_files(pytester.path, SNOWFLAKE_SHOP_FILES)
    return pytester


def test_subprocess_runner_and_the_emulators_limit_told(snowflake_repo: pytest.Pytester) -> None:
    """dbt as dagster-dbt's own subprocess runs on the emulator too; a statement fakesnow
    cannot translate fails naming the model, with the sentence on the emulator's limit."""
    write_files(
        snowflake_repo.path,
        {
            "shop_dbt/models/marts/share.sql": """
                select name, ratio_to_report(id) over () as share from {{ ref('customers') }}
            """,
            "tests/test_runner.py": """
                def test_runner(dbt_assets_materialize):
                    built = dbt_assets_materialize(dbt_select="customers")
                    assert built.row_counts == {"customers": 3}
                    failed = dbt_assets_materialize(dbt_select="share", raise_on_error=False)
                    assert not failed.success
                    print("FAILURE:", failed.failures[0].replace("\\n", " | "))
            """,
        },
    )
    result = snowflake_repo.runpytest("-s", "--dbt-assets-runner=subprocess", "tests/test_runner.py")
    result.assert_outcomes(passed=1)
    failure = next(line for line in result.outlines if "FAILURE:" in line)
    assert "dbt model share (models/marts/share.sql) failed" in failure
    assert "may be a limit of fakesnow" in failure and "docs/snowflake-differences.md" in failure


def test_baseline_and_vars_on_the_emulator(snowflake_repo: pytest.Pytester) -> None:
    """Tests that start from the session baseline get its copy of every database's file."""
    write_files(
        snowflake_repo.path,
        {
            "pyproject.toml": SNOWFLAKE_SHOP_FILES["pyproject.toml"] + 'dbt_assets_baseline_select = "customers"\n',
            "shop_dbt/models/marts/fr_customers.sql": """
                select * from {{ ref('customers') }} where country = '{{ var("country", "fr") }}'
            """,
            "tests/test_baseline.py": """
                import pytest

                @pytest.mark.dbt_assets(baseline=True)
                def test_from_baseline(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="fr_customers", vars={"country": "de"})
                    assert result.materialized == ["fr_customers"]
                    assert result.row_counts == {"fr_customers": 1}
                    assert dbt_assets_project.query("select count(*) from customers") == [(3,)]
            """,
        },
    )
    snowflake_repo.inline_run("tests/test_baseline.py").assertoutcome(passed=1)


def test_another_adapter_gets_one_sentence_and_its_graph_is_tested(pytester: pytest.Pytester) -> None:
    files = dict(SNOWFLAKE_SHOP_FILES)
    files["shop_dbt/profiles.yml"] = """
        shop:
          target: prod
          outputs:
            prod:
              type: bigquery
              method: oauth
              project: acme-analytics
              dataset: marts
    """
    files["tests/test_graph.py"] = """
        def test_graph(dbt_asset_graph):
            assert dbt_asset_graph.upstream("customer_orders") == {"customers", "stg_orders"}
    """
    write_files(pytester.path, files)
    result = pytester.runpytest("tests/test_graph.py")
    result.assert_outcomes(passed=1)
    said = [line for line in result.outlines if "your profile's target is bigquery" in line]
    assert len(said) == 1 and "materializations run on DuckDB's SQL" in said[0]


def test_io_managers_and_write_pandas_reach_the_emulator(snowflake_repo: pytest.Pytester) -> None:
    """dagster-snowflake-pandas' I/O manager (credentials from unset EnvVars) and
    write_pandas land DataFrames in the test database, where dbt and query() read them."""
    if importlib.util.find_spec("dagster_snowflake_pandas") is None:  # looked up: see tests/e2e/test_docs.py
        pytest.skip("dagster-snowflake-pandas is not installed")
    write_files(
        snowflake_repo.path,
        {
            "pyproject.toml": SNOWFLAKE_SHOP_FILES["pyproject.toml"].replace("definitions:defs", "frames:defs"),
            "shop_dagster/frames.py": """
                import dagster as dg
                import pandas as pd
                from dagster_snowflake import SnowflakeResource
                from dagster_snowflake_pandas import SnowflakePandasIOManager
                from snowflake.connector.pandas_tools import write_pandas

                from shop_dagster.definitions import project, shop_dbt_assets


                @dg.asset(key_prefix=["RAW", "SHOP"], io_manager_key="frames")
                def visits() -> pd.DataFrame:
                    return pd.DataFrame({"ID": [1, 2, 3], "PAGE": ["a", "b", "a"]})


                @dg.asset(io_manager_key="frames", key_prefix=["RAW", "SHOP"])
                def page_counts(visits: pd.DataFrame) -> pd.DataFrame:
                    return visits.groupby("page", as_index=False).size()  # loaded with lower-case names


                @dg.asset
                def pandas_landing(snowflake: SnowflakeResource) -> dg.MaterializeResult:
                    frame = pd.DataFrame({"ID": [7, 8], "NAME": ["x", "y"]})
                    with snowflake.get_connection() as conn:
                        conn.cursor().execute("create or replace table ANALYTICS.PUBLIC.LANDED (ID int, NAME varchar)")
                        success, _, rows, _ = write_pandas(conn, frame, "LANDED")
                    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


                defs = dg.Definitions(
                    assets=[shop_dbt_assets, visits, page_counts, pandas_landing],
                    resources={
                        "dbt": dg.ResourceDefinition.none_resource(),
                        "snowflake": SnowflakeResource(
                            account=dg.EnvVar("SNOWFLAKE_ACCOUNT"), user=dg.EnvVar("SNOWFLAKE_USER"),
                            password=dg.EnvVar("SNOWFLAKE_PASSWORD"), database="ANALYTICS", schema="PUBLIC",
                        ),
                        "frames": SnowflakePandasIOManager(
                            account=dg.EnvVar("SNOWFLAKE_ACCOUNT"), user=dg.EnvVar("SNOWFLAKE_USER"),
                            password=dg.EnvVar("SNOWFLAKE_PASSWORD"), database=dg.EnvVar("SNOWFLAKE_DATABASE"),
                        ),
                    },
                )
            """,
            "tests/test_frames.py": """
                def test_frames(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(["RAW/SHOP/visits", "RAW/SHOP/page_counts", "pandas_landing"])
                    assert result.row_counts["pandas_landing"] == 2
                    assert dbt_assets_project.query("select count(*) from ANALYTICS.SHOP.VISITS") == [(3,)]
                    assert dbt_assets_project.query("select * from ANALYTICS.SHOP.PAGE_COUNTS order by 1") == [
                        ("a", 2), ("b", 1)
                    ]
                    assert dbt_assets_project.query("select name from LANDED order by id") == [("x",), ("y",)]
            """,
        },
    )
    snowflake_repo.inline_run("tests/test_frames.py").assertoutcome(passed=1)
