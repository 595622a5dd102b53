"""What a base-branch comparison costs: example_project as a git repository, one staging model
changed in the working tree, and three pytest sessions of one test each.

    python benchmarks/diff.py --repeat 3

For each repeat, in a fresh temporary repository:

(a) `dbt_assets_materialize(dbt_select="+customers +orders")`: the same test without a comparison;
(b) `dbt_assets_diff(base="main", dbt_select=...)` with an empty pytest cache: the base revision's
    tree from git, a nested pytest run building it, the working tree's build, the comparison;
(c) the same again: the base's result comes from pytest's cache;
(d) `dbt_asset_graph.diff(base="main")`, the impact only, cold cache.

Prints a Markdown table of the medians of the test calls and session walls (`--durations=0`).
Measurement only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = (
    "__snapshots__",
    "target",
    "logs",
    "__pycache__",
    "tests",
    "jaffle_components",
    "jaffle_snowflake",
    ".pytest_cache",
)
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
CONFTEST = """
import pytest
from jaffle_dagster.resources import DuckDBWarehouse

@pytest.fixture
def dbt_assets_resources(dbt_assets_project):
    return {"warehouse": DuckDBWarehouse(path=str(dbt_assets_project.duckdb_path))}
"""
TESTS = """
SELECT = "+customers +orders"

def test_materialize(dbt_assets_materialize):
    assert dbt_assets_materialize(dbt_select=SELECT).success

def test_diff(dbt_assets_diff):
    assert dbt_assets_diff(base="main", dbt_select=SELECT)["jaffle/staging/stg_orders"].removed == 1

def test_impact(dbt_asset_graph):
    assert "jaffle/staging/stg_orders" in dbt_asset_graph.diff(base="main").modified
"""


def make_repo(folder: Path) -> None:
    shutil.copytree(ROOT / "example_project", folder, ignore=shutil.ignore_patterns(*SKIPPED))
    (folder / "tests").mkdir()
    (folder / "tests" / "conftest.py").write_text(CONFTEST)
    (folder / "tests" / "test_bench.py").write_text(TESTS)
    (folder / ".gitignore").write_text("target/\n.pytest_cache/\n__pycache__/\n*.duckdb\n")
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "jaffle shop"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True)
    model = folder / "jaffle_dbt/models/staging/stg_orders.sql"
    model.write_text(model.read_text() + "where status != 'returned'\n")


def session(folder: Path, test: str) -> tuple[float, float]:
    """One pytest session of ``test``: the test call's duration and the session's wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", f"tests/test_bench.py::{test}", "-q", "--durations=0", "-p", "no:randomly"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{test} failed:\n{done.stdout}\n{done.stderr}")
    call = re.search(rf"([\d.]+)s call\s+\S+::{test}", done.stdout)
    return (float(call.group(1)) if call else float("nan")), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(options.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-diff-") as work:
            repo = Path(work) / "repo"
            make_repo(repo)
            for label, test in (
                ("(a) materialize only", "test_materialize"),
                ("(b) dbt_assets_diff, cold cache", "test_diff"),
                ("(c) dbt_assets_diff, warm cache", "test_diff"),
            ):
                call, wall = session(repo, test)
                rows.setdefault(f"{label}: test call", []).append(call)
                rows.setdefault(f"{label}: pytest wall", []).append(wall)
            shutil.rmtree(repo / ".pytest_cache")
            call, wall = session(repo, "test_impact")
            rows.setdefault("(d) dbt_asset_graph.diff, cold cache: test call", []).append(call)
            rows.setdefault("(d) dbt_asset_graph.diff, cold cache: pytest wall", []).append(wall)
    print(f"| measurement (median of {options.repeat}) | s |\n|---|---:|")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
