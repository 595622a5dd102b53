"""Never leak, never lose (issue 11): dbt() cannot be pointed elsewhere, query() cannot write
or read files, and a failed test never costs a committed snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repos import PROD_PROFILES, guarded_user_env, run_pytest, write_files

pytestmark = pytest.mark.e2e

# --- dbt(): every flag that could point dbt elsewhere is refused ---------------------------

DBT_FLAGS_TEST = """
    from pathlib import Path

    import pytest

    from pytest_dbt_assets.errors import DbtIsolationError

    USER_DIR = str(Path("shop").resolve())
    ELSEWHERE = str(Path("elsewhere").resolve())
    CASES = {
        "--profiles-dir": USER_DIR,
        "--profile": "shop_prod",
        "--target": "local",
        "-t": "local",
        "--project-dir": USER_DIR,
        "--target-path": ELSEWHERE,
        "--log-path": ELSEWHERE,
        "--partial-parse-file-path": ELSEWHERE + "/partial_parse.msgpack",
    }


    @pytest.mark.parametrize("form", ["separate", "joined"])
    @pytest.mark.parametrize("flag", list(CASES))
    def test_refused(dbt_assets_project, flag, form):
        value = CASES[flag]
        if form == "separate":
            args = [flag, value]
        else:
            args = [flag + value] if flag == "-t" else [f"{flag}={value}"]
        # The user's own profile and target on top, as in the report that found the hole.
        with pytest.raises(DbtIsolationError) as info:
            dbt_assets_project.dbt("seed", *args, "--target", "local")
        message = str(info.value)
        assert message.startswith("dbt_assets_project.dbt('seed', "), message
        assert f"  {args[0]}: it would " in message, message
        assert "dbt_assets_project.profiles_dir" in message and "Drop the flag" in message, message


    def test_grouped_short_flags_are_read(dbt_assets_project):
        with pytest.raises(DbtIsolationError, match="-xt: it would select another target"):
            dbt_assets_project.dbt("seed", "-xt", "local")


    def test_harmless_commands_still_work(dbt_assets_project):
        dbt_assets_project.reset_database()
        dbt_assets_project.dbt("seed", "--select", "raw_customers", "--full-refresh")
        assert dbt_assets_project.query("select count(*) from raw_customers") == [(3,)]
        result = dbt_assets_project.dbt("run-operation", "say_hello", "--args", "{name: leaks}")
        assert result.success
        dbt_assets_project.dbt("run", "-s", "stg_customers")
        assert dbt_assets_project.query("select count(*) from stg_customers") == [(3,)]
"""


# --- query(): read-only, no file access ---------------------------------------------------

QUERY_TEST = """
    import duckdb
    import pytest

    from pytest_dbt_assets.errors import ReadOnlyQueryError


    @pytest.fixture
    def project(dbt_assets_project):
        dbt_assets_project.reset_database()
        dbt_assets_project.dbt("seed", "--select", "raw_customers")
        return dbt_assets_project


    def test_select_works(project):
        assert project.query("select name from raw_customers where id = ?", [2]) == [("Bob",)]


    @pytest.mark.parametrize(
        "sql",
        [
            "COPY (select * from raw_customers) TO '{out}/copy.csv'",
            "COPY raw_customers TO '{out}/copy.parquet' (FORMAT parquet)",
            "select * from read_csv('{secret}')",
            "select * from '{secret}'",
            "select * from read_text('{secret}')",
            "ATTACH '{out}/other.duckdb' AS other",
            "EXPORT DATABASE '{out}/export'",
            "insert into raw_customers values (4, 'Di')",
            "create table copied as select * from raw_customers",
            "drop table raw_customers",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "INSTALL httpfs",
            "LOAD httpfs",
        ],
    )
    def test_refused(project, sql, tmp_path):
        out = tmp_path / "out"
        out.mkdir()
        secret = tmp_path / "secret.csv"
        secret.write_text("password\\nhunter2\\n")
        with pytest.raises(ReadOnlyQueryError) as info:
            project.query(sql.format(out=out, secret=secret))
        message = str(info.value)
        assert message.startswith("dbt_assets_project.query() is read-only and refused `"), message
        assert "DuckDB: " in message and 'dbt_assets_project.dbt("seed")' in message, message
        assert list(out.iterdir()) == []
        assert project.query("select count(*) from raw_customers") == [(3,)]


    def test_a_view_reading_a_file_is_refused_with_a_hint(project, tmp_path):
        csv = tmp_path / "stores.csv"
        csv.write_text("id\\n1\\n")
        with duckdb.connect(str(project.duckdb_path)) as con:
            con.execute(f"create view file_view as select * from read_csv('{csv}')")
        with pytest.raises(ReadOnlyQueryError, match="A view that reads a file itself"):
            project.query("select * from file_view")


    def test_other_errors_are_duckdb_own(project):
        with pytest.raises(duckdb.CatalogException, match="no_such_table"):
            project.query("select * from no_such_table")


    def test_pinned_database_is_queryable_read_only(project, tmp_path):
        pinned = tmp_path / "pinned_raw.duckdb"
        with duckdb.connect(str(pinned)) as con:
            con.execute("create table payments as select 1 as id, 9.5 as amount")
        project.attached_databases["pinned_raw"] = pinned
        try:
            assert project.query("select amount from pinned_raw.main.payments") == [(9.5,)]
            joined = "select count(*) from raw_customers c join pinned_raw.payments p on c.id = p.id"
            assert project.query(joined) == [(1,)]
            with pytest.raises(ReadOnlyQueryError):
                project.query("insert into pinned_raw.payments values (2, 1.0)")
        finally:
            del project.attached_databases["pinned_raw"]
        with duckdb.connect(str(pinned), read_only=True) as con:
            assert con.execute("select count(*) from payments").fetchall() == [(1,)]
"""


def test_dbt_refuses_every_flag_that_points_elsewhere_and_query_is_read_only(
    shop_repo: pytest.Pytester, tmp_path: Path
) -> None:
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES)
    write_files(
        shop_repo.path,
        {
            "shop/profiles.yml": PROD_PROFILES,
            "shop/macros/say_hello.sql": "{% macro say_hello(name) %}{{ log('hello ' ~ name) }}{% endmacro %}",
            "tests/test_dbt.py": DBT_FLAGS_TEST,
            "tests/test_query.py": QUERY_TEST,
        },
    )
    env |= {
        # Both spellings dbt 1.11 reads; DBT_ENGINE_... wins over DBT_...
        "DBT_ENGINE_PROFILES_DIR": str(home / ".dbt"),
        "DBT_ENGINE_TARGET": "local",
        "DBT_ENGINE_PROFILE": "shop_prod",
        "DBT_ENGINE_TARGET_PATH": str(tmp_path / "elsewhere"),
        "DBT_ENGINE_LOG_PATH": str(tmp_path / "elsewhere"),
        "DBT_PARTIAL_PARSE_FILE_PATH": str(tmp_path / "elsewhere" / "partial_parse.msgpack"),
    }
    run = run_pytest(shop_repo.path, "-p", "no:randomly", env=env)
    assert run.returncode == 0, run.stdout[-6000:]
    assert "36 passed" in run.stdout, run.stdout[-3000:]  # 18 of dbt(), 18 of query()
    assert not log.exists() or log.read_text() == "", log.read_text()
    for never_created in (
        shop_repo.path / "local_dev.duckdb",
        shop_repo.path / "shop/local_dev.duckdb",
        home / ".dbt/local_dev.duckdb",
        shop_repo.path / "elsewhere",
        tmp_path / "elsewhere",
        shop_repo.path / "shop/logs",
        shop_repo.path / "shop/target/run_results.json",
        shop_repo.path / "shop/target/partial_parse.msgpack",
    ):
        assert not never_created.exists(), never_created


# --- snapshots: a failed test keeps its committed snapshot --------------------------------

GRAPH_AND_CONFIG_TEST = """
    def test_graph(dbt_asset_graph, dbt_assets_snapshot):
        assert dbt_asset_graph == dbt_assets_snapshot


    def test_settings(dbt_assets_snapshot):
        # Needs no dbt: it runs (and uses its snapshot folder) even when the project is broken.
        assert {"warehouse": "duckdb"} == dbt_assets_snapshot
"""


def _snapshot_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("__snapshots__/**/*"))
        if path.is_file()
    }


def test_snapshots_survive_a_project_that_fails_to_parse(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_AND_CONFIG_TEST})
    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=2)
    committed = _snapshot_files(shop_repo.path)
    assert sorted(committed) == [
        "tests/__snapshots__/test_graph/test_graph.yaml",
        "tests/__snapshots__/test_graph/test_settings.yaml",
    ]
    # A snapshot of a test that no longer exists: cleanup must still remove it.
    stale = shop_repo.path / "tests/__snapshots__/test_graph/test_removed.yaml"
    stale.write_bytes(committed["tests/__snapshots__/test_graph/test_settings.yaml"])

    write_files(shop_repo.path, {"shop/models/marts/orders.sql": "select * from {{ ref('stg_payments') }}"})
    broken = shop_repo.runpytest("--snapshot-update")
    broken.assert_outcomes(passed=1, errors=1)
    assert _snapshot_files(shop_repo.path) == committed, broken.stdout.str()
    assert "1 unused snapshot deleted" in broken.stdout.str()

    stale.write_bytes(committed["tests/__snapshots__/test_graph/test_settings.yaml"])
    plain = shop_repo.runpytest()
    plain.assert_outcomes(passed=1, errors=1)
    # test_removed is unused; test_graph (it failed) is not.
    assert "1 snapshot unused." in plain.stdout.str(), plain.stdout.str()
    stale.unlink()

    # -k deselection still keeps the deselected test's snapshot (syrupy's own rule).
    shop_repo.runpytest("--snapshot-update", "-k", "test_settings").assert_outcomes(passed=1)
    assert _snapshot_files(shop_repo.path) == committed


def test_snapshots_survive_a_parse_error_under_xdist(shop_repo: pytest.Pytester) -> None:
    # Under xdist the failed test is recorded on a worker and merged by the controller.
    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_AND_CONFIG_TEST})
    shop_repo.runpytest("--snapshot-update", "-n", "2").assert_outcomes(passed=2)
    committed = _snapshot_files(shop_repo.path)
    assert len(committed) == 2
    stale = shop_repo.path / "tests/__snapshots__/test_graph/test_removed.yaml"
    stale.write_bytes(committed["tests/__snapshots__/test_graph/test_settings.yaml"])
    write_files(shop_repo.path, {"shop/models/marts/orders.sql": "select * from {{ ref('stg_payments') }}"})
    broken = shop_repo.runpytest("--snapshot-update", "-n", "2")
    broken.assert_outcomes(passed=1, errors=1)
    assert _snapshot_files(shop_repo.path) == committed, broken.stdout.str()


FAILS_BEFORE_SNAPSHOT_TEST = """
    import pytest


    @pytest.mark.parametrize("mart", ["customers", "orders"])
    def test_mart(dbt_assets_materialize, dbt_assets_snapshot, mart):
        result = dbt_assets_materialize(dbt_select="+" + mart)
        assert result.row_counts["acme/marts/customers" if mart == "customers" else "acme/marts/orders"] < 5
        assert result.summary() == dbt_assets_snapshot


    def test_counts(dbt_assets_materialize, snapshot):
        result = dbt_assets_materialize(dbt_select="+customers")
        assert result.row_counts["acme/marts/customers"] == 3
        assert result.row_counts == snapshot


    def test_unrelated(snapshot):
        assert 1 == 1
"""


def test_snapshots_survive_a_test_that_fails_before_its_assertion(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_marts.py": FAILS_BEFORE_SNAPSHOT_TEST})
    shop_repo.runpytest("--snapshot-update").assert_outcomes(passed=4)
    committed = _snapshot_files(shop_repo.path)
    assert sorted(committed) == [
        "tests/__snapshots__/test_marts.ambr",
        "tests/__snapshots__/test_marts/test_mart[customers].yaml",
        "tests/__snapshots__/test_marts/test_mart[orders].yaml",
    ]
    stale = shop_repo.path / "tests/__snapshots__/test_marts/test_gone.yaml"
    stale.write_bytes(committed["tests/__snapshots__/test_marts/test_mart[orders].yaml"])

    # Three more customers: test_mart[customers] and test_counts fail before their snapshot
    # assertions; test_mart[orders] still passes.
    seed = shop_repo.path / "shop/seeds/raw_customers.csv"
    seed.write_text(seed.read_text() + "4,Di\n5,Ed\n6,Flo\n")
    result = shop_repo.runpytest("--snapshot-update")
    result.assert_outcomes(passed=2, failed=2)
    assert not stale.exists(), "a truly unused snapshot must still be deleted"
    assert _snapshot_files(shop_repo.path) == committed, result.stdout.str()
