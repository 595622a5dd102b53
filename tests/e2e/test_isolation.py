"""Never touch production, never leave anything behind (issue: isolation guarantees)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.repos import MATERIALIZE_MARTS_TEST, PROD_PROFILES, guarded_user_env, run_pytest, write_files

# The worker as its own process, as users run it (not forked from the suite's zygote).
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("no_suite_zygote")]

# The worst case: the user's profile also has a target named like the plugin's.
PROD_PROFILES_WITH_PLUGIN_TARGET_NAME = (
    PROD_PROFILES
    + """
        dbt_assets:
          type: duckdb
          path: local_dev.duckdb
"""
)


@pytest.mark.parametrize(
    ("prefix", "runner"),
    [("DBT_", "worker"), ("DBT_ENGINE_", "worker"), ("DBT_ENGINE_", "subprocess")],
    ids=["DBT_-worker", "DBT_ENGINE_-worker", "DBT_ENGINE_-subprocess"],
)
def test_no_network_and_no_user_profile(shop_repo: pytest.Pytester, tmp_path: Path, prefix: str, runner: str) -> None:
    """dbt 1.11 reads `DBT_ENGINE_X` before `DBT_X`: both spellings, both runners."""
    env, log, home = guarded_user_env(tmp_path, PROD_PROFILES_WITH_PLUGIN_TARGET_NAME)
    write_files(
        shop_repo.path,
        {
            "shop/profiles.yml": PROD_PROFILES_WITH_PLUGIN_TARGET_NAME,
            "tests/test_run.py": """
            def test_run(dbt_assets_materialize):
                result = dbt_assets_materialize(dbt_select="+customers +orders")
                assert result.row_counts["acme/marts/customers"] == 3
        """,
        },
    )
    env |= {
        prefix + "PROFILES_DIR": str(home / ".dbt"),
        prefix + "TARGET": "local",
        prefix + "PROFILE": "shop_prod",
        prefix + "TARGET_PATH": str(tmp_path / "elsewhere"),
        prefix + "LOG_PATH": str(tmp_path / "elsewhere_logs"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    run = run_pytest(shop_repo.path, f"--dbt-assets-runner={runner}", env=env)
    assert run.returncode == 0, run.stdout[-4000:]
    assert not log.exists() or log.read_text() == "", log.read_text()
    for never_created in (
        shop_repo.path / "shop/local_dev.duckdb",
        shop_repo.path / "local_dev.duckdb",
        home / ".dbt/local_dev.duckdb",
        tmp_path / "elsewhere",
        tmp_path / "elsewhere_logs",
        tmp_path / "dagster_home",
    ):
        assert not never_created.exists(), never_created


def test_nothing_left_running_after_the_session(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "tests/test_run.py": MATERIALIZE_MARTS_TEST,
            "conftest.py": """
            import os, subprocess, sys, threading
            from pathlib import Path

            def pytest_sessionfinish(session):
                # Runs after the plugin's fixtures are torn down.
                children = []
                for stat in Path("/proc").glob("[0-9]*/stat"):
                    try:
                        fields = stat.read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    command = (stat.parent / "cmdline").read_text()
                    # multiprocessing's resource tracker (started by dbt's locks) is the
                    # interpreter's own helper: it exits with the interpreter.
                    if int(fields[1]) == os.getpid() and "resource_tracker" not in command:
                        children.append(command.replace("\\0", " ")[:80])
                threads = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
                db = next(Path(str(session.config._tmp_path_factory.getbasetemp())).rglob("dbt_assets.duckdb"))
                # Another process can open the file for writing: no lock is held.
                probe = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(db)!r}).close()"])
                Path("leftovers.txt").write_text(f"children={children} threads={threads} probe={probe.returncode}")
        """,
        },
    )
    run = run_pytest(shop_repo.path)
    assert run.returncode == 0, run.stdout[-4000:]
    assert (shop_repo.path / "leftovers.txt").read_text() == "children=[] threads=[] probe=0"


def test_ctrl_c_during_materialization_stops_dbt_and_leaves_nothing(shop_repo: pytest.Pytester) -> None:
    started = shop_repo.path / "slow_started.csv"
    write_files(
        shop_repo.path,
        {
            # A model that would run for hours; its pre-hook says when dbt is inside it.
            "shop/models/marts/slow.sql": (
                f"{{{{ config(pre_hook=\"copy (select 1 as started) to '{started}'\") }}}}\n"
                "select count(*) as n from range(100000000000) a"
            ),
            "tests/test_run.py": """
            def test_run(dbt_assets_materialize):
                dbt_assets_materialize(dbt_select="+slow")
        """,
        },
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=shop_repo.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600  # hang guard
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), "dbt never reached the slow model"
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=600)  # a hang guard: Ctrl-C must end the run
    finally:
        process.kill()
    assert process.returncode not in (None, 0), output[-3000:]
    assert "KeyboardInterrupt" in output or "Interrupted" in output or "interrupt" in output.lower(), output[-3000:]
    # No stuck dbt process, no lock: the next run works.
    leftover = subprocess.run(["pgrep", "-f", str(shop_repo.path)], capture_output=True, text=True, check=False)
    assert leftover.stdout.strip() == "", leftover.stdout
    (shop_repo.path / "shop/models/marts/slow.sql").unlink()
    write_files(
        shop_repo.path,
        {"tests/test_run.py": MATERIALIZE_MARTS_TEST},
    )
    rerun = run_pytest(shop_repo.path)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
