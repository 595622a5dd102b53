"""The warehouse seam without a nested session: reading the user's profile (never its
credentials), choosing the backend, the sentence for other adapters, the rewrites of the
statements dbt-snowflake writes, and the emulator's connections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dbt_assets.errors import WarehouseError
from pytest_dbt_assets.warehouse import (
    choose_backend,
    foreign_note,
    parse_warehouse_option,
    read_user_target,
    render,
)
from pytest_dbt_assets.warehouse.duckdb import DuckDBBackend

PROFILE = """
shop:
  target: "{{ env_var('DBT_TARGET', 'prod') }}"
  outputs:
    prod:
      type: snowflake
      account: "{{ env_var('SNOWFLAKE_ACCOUNT') }}"
      password: "{{ env_var('SNOWFLAKE_PASSWORD') }}"
      database: "{{ env_var('SNOWFLAKE_DATABASE', 'ANALYTICS') }}"
      schema: PUBLIC
    dev:
      type: duckdb
      path: dev.duckdb
"""


def _project(folder: Path, profile: str = PROFILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (folder / "profiles.yml").write_text(profile)
    return folder


def test_the_default_target_is_read_as_dbt_renders_it(tmp_path: Path) -> None:
    project = _project(tmp_path / "shop")
    target = read_user_target(project, "shop", rootdir=tmp_path, environ={})
    assert target is not None
    assert (target.type, target.database, target.schema) == ("snowflake", "ANALYTICS", "PUBLIC")
    assert target.origin == "shop/profiles.yml, profile shop, target prod"
    dev = read_user_target(project, "shop", rootdir=tmp_path, environ={"DBT_TARGET": "dev"})
    assert dev is not None and (dev.type, dev.path) == ("duckdb", (project / "dev.duckdb").resolve())


def test_credentials_are_never_needed(tmp_path: Path) -> None:
    """SNOWFLAKE_ACCOUNT and SNOWFLAKE_PASSWORD have no default and are unset: still read."""
    target = read_user_target(_project(tmp_path / "shop"), "shop", rootdir=tmp_path, environ={})
    assert target is not None and target.type == "snowflake"


def test_profiles_dir_variable_wins_over_the_project(tmp_path: Path) -> None:
    project = _project(tmp_path / "shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text("shop:\n  target: t\n  outputs:\n    t:\n      type: bigquery\n")
    target = read_user_target(project, "shop", rootdir=tmp_path, environ={"DBT_PROFILES_DIR": str(elsewhere)})
    assert target is not None and target.type == "bigquery"


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ("other:\n  target: t\n  outputs: {t: {type: duckdb}}\n", "no such profile"),
        ("shop:\n  target: missing\n  outputs: {t: {type: duckdb}}\n", "no such target"),
        ("shop: [unclosed\n", "not YAML"),
    ],
)
def test_an_unreadable_profile_is_none(tmp_path: Path, profile: str, why: str) -> None:
    assert read_user_target(_project(tmp_path / "shop", profile), "shop", rootdir=tmp_path, environ={}) is None, why


def test_render_takes_defaults_and_gives_up_on_unset_variables() -> None:
    assert render("{{ env_var('X', 'fallback') }}", {}) == "fallback"
    assert render("{{ env_var('X') }}", {"X": "set"}) == "set"
    assert render("{{ env_var('X') }}", {}) is None
    assert render("plain", {}) == "plain"
    assert render(None, {}) is None


def test_the_option_names_type_database_and_schema() -> None:
    option = parse_warehouse_option("snowflake:ANALYTICS.PUBLIC")
    assert (option.type, option.database, option.schema) == ("snowflake", "ANALYTICS", "PUBLIC")
    assert parse_warehouse_option("DuckDB").type == "duckdb"
    with pytest.raises(WarehouseError, match="snowflake:ANALYTICS.PUBLIC"):
        parse_warehouse_option("snowflake:ANALYTICS")


def test_another_adapter_is_served_as_duckdb_with_one_sentence(tmp_path: Path) -> None:
    backend = choose_backend(_project(tmp_path / "shop"), tmp_path, "bigquery")
    assert isinstance(backend, DuckDBBackend)
    note = foreign_note(backend.target)
    assert note is not None and "target is bigquery" in note and "materializations run on DuckDB's SQL" in note
    assert foreign_note(choose_backend(_project(tmp_path / "duck", "shop: {}\n"), tmp_path, None).target) is None


def test_snowflake_without_the_extra_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fakesnow" else real(name, *a))
    with pytest.raises(WarehouseError, match=r"fakesnow is not installed.*pytest-dbt-assets\[snowflake\]"):
        choose_backend(_project(tmp_path / "shop"), tmp_path, None)


fakesnow = pytest.importorskip("fakesnow")


@pytest.mark.filterwarnings("ignore::UserWarning:fakesnow.cursor")
def test_the_emulator_lets_go_of_its_files_when_the_last_connection_closes(tmp_path: Path) -> None:
    import duckdb

    from pytest_dbt_assets.warehouse.snowflake import Emulator

    emulator = Emulator(tmp_path)
    first = emulator.connect(database="ANALYTICS", schema="PUBLIC")
    second = emulator.connect(database="ANALYTICS", schema="PUBLIC")
    first.cursor().execute("create table t as select 1 as a")
    first.close()
    assert second.cursor().execute("select count(*) from t").fetchone() == (1,)
    second.close()
    # Another process (dbt's) may open the file now: this one holds it no more.
    with duckdb.connect(str(tmp_path / "ANALYTICS.db")) as con:
        assert con.execute("select count(*) from PUBLIC.T").fetchone() == (1,)


def test_the_emulator_loads_its_sql_dialects_before_any_thread_parses(tmp_path: Path) -> None:
    """sqlglot registers a dialect class it loads on first use before giving it its parser; a
    thread parsing meanwhile got sqlglot's generic parser, and dbt's first statements, run in
    threads, reached DuckDB untranslated (``SHOW TERSE SCHEMAS``). A fresh process: here every
    dialect is long loaded."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from sqlglot.dialects.dialect import Dialect\n"
        "from pytest_dbt_assets.warehouse.snowflake import emulating\n"
        "with emulating(Path(sys.argv[1])):\n"
        "    print(json.dumps([name for name, dialect in Dialect._classes.items() if 'parser_class' in vars(dialect)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "emulator")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert {"duckdb", "snowflake"} <= set(json.loads(done.stdout))


def test_dbt_snowflake_merge_and_temporary_objects_run_on_the_emulator(tmp_path: Path) -> None:
    from pytest_dbt_assets.warehouse.snowflake import emulating

    with emulating(tmp_path) as emulator:
        connection = emulator.connect(database="ANALYTICS", schema="PUBLIC")
        cursor = connection.cursor()
        cursor.execute("create table ANALYTICS.PUBLIC.target (id int, name varchar)")
        cursor.execute("insert into ANALYTICS.PUBLIC.target values (1, 'old')")
        # What dbt-snowflake's incremental materialization writes (merge strategy).
        cursor.execute(
            "create or replace temporary view ANALYTICS.PUBLIC.target__dbt_tmp as "
            "(select 1 as id, 'new' as name union all select 2, 'added')"
        )
        cursor.execute("begin")
        cursor.execute(
            """merge into ANALYTICS.PUBLIC.target as DBT_INTERNAL_DEST
            using ANALYTICS.PUBLIC.target__dbt_tmp as DBT_INTERNAL_SOURCE
            on (DBT_INTERNAL_SOURCE.id = DBT_INTERNAL_DEST.id)
            when matched then update set "NAME" = DBT_INTERNAL_SOURCE."NAME"
            when not matched then insert ("ID", "NAME") values ("ID", "NAME")"""
        )
        cursor.execute("commit")
        assert cursor.execute("select id, name from target order by id").fetchall() == [(1, "new"), (2, "added")]
        connection.close()
        # The temporary view went with its connection, as with Snowflake's session.
        other = emulator.connect(database="ANALYTICS", schema="PUBLIC")
        names = other.cursor().execute("select table_name from information_schema.tables").fetchall()
        assert ("TARGET__DBT_TMP",) not in names and ("TARGET",) in names
        other.close()


def test_snowflake_sources_load_in_upper_case_with_snowflake_types(tmp_path: Path) -> None:
    """A data file's lower-case header and a YAML's lower-case `columns:` with Snowflake type
    names give the table Snowflake would hold: upper-case names, declared types, no extra column."""
    import duckdb

    from pytest_dbt_assets.database import load_sources
    from pytest_dbt_assets.warehouse import UserTarget
    from pytest_dbt_assets.warehouse.snowflake import SnowflakeBackend

    backend = SnowflakeBackend(UserTarget("snowflake", "ANALYTICS", "PUBLIC"))
    data = tmp_path / "data" / "raw"
    data.mkdir(parents=True)
    (data / "orders.csv").write_text("id,amount,payload\n1,2.5,{}\n")
    source = {
        "source_name": "raw",
        "name": "orders",
        "schema": "shop",
        "columns": {"id": {"data_type": "number(38, 0)"}, "placed_at": {"data_type": "timestamp_ntz"}},
    }
    main = tmp_path / "ANALYTICS.db"
    loaded = load_sources(
        main,
        [source],
        provided={},
        data_dir=tmp_path / "data",
        identifier=backend.identifier,
        column_type=backend.column_type,
    )
    assert loaded == ["raw.orders"]
    with duckdb.connect(str(main)) as con:
        columns = con.execute("describe ANALYTICS.SHOP.ORDERS").fetchall()
    assert [(name, kind) for name, kind, *_ in columns] == [
        ("ID", "DECIMAL(38,0)"),
        ("AMOUNT", "DOUBLE"),
        ("PAYLOAD", "VARCHAR"),
        ("PLACED_AT", "TIMESTAMP"),
    ]
