"""The warm dbt worker must produce exactly what dagster-dbt's plain subprocess path does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repos import write_files

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

FIDELITY_TEST = """
    import pytest


    def metadata_keys(result):
        keys = {}
        for event in result.result.get_asset_materialization_events():
            materialization = event.materialization
            keys[materialization.asset_key.to_user_string()] = sorted(materialization.metadata)
        return keys


    def checks_metadata_keys(result):
        return {
            evaluation.check_name: sorted(evaluation.metadata)
            for evaluation in result.result.get_asset_check_evaluations()
        }


    @pytest.mark.parametrize("select", [None, SELECT_ONE])
    def test_same_result(dbt_assets_materialize, dbt_assets_snapshot, select):
        first = dbt_assets_materialize(dbt_select=select, raise_on_error=False)
        second = dbt_assets_materialize(dbt_select=select, raise_on_error=False)  # incremental path
        assert {
            "summary": first.summary(columns=True),
            "again": second.summary(),
            "metadata": metadata_keys(first),
            "check_metadata": checks_metadata_keys(first),
        } == dbt_assets_snapshot
"""


def _fidelity(pytester: pytest.Pytester, select_one: str) -> None:
    write_files(pytester.path, {"tests/test_fidelity.py": FIDELITY_TEST.replace("SELECT_ONE", repr(select_one))})
    test = "tests/test_fidelity.py"
    plain = pytester.runpytest(test, "--dbt-assets-runner=subprocess", "--snapshot-update", "-p", "no:cacheprovider")
    plain.assert_outcomes(passed=2)
    snapshots = sorted((pytester.path / "tests/__snapshots__/test_fidelity").glob("*.yaml"))
    assert len(snapshots) == 2
    fast = pytester.runpytest(test, "--dbt-assets-runner=worker", "-p", "no:cacheprovider")
    fast.assert_outcomes(passed=2)


def test_example_project_same_through_worker_and_subprocess(pytester: pytest.Pytester) -> None:
    shutil.copytree(
        ROOT / "example_project",
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__snapshots__", "target", "logs", "__pycache__", "tests"),
    )
    write_files(
        pytester.path,
        {
            "tests/conftest.py": """
        import pytest
        from jaffle_dagster.resources import DuckDBWarehouse

        @pytest.fixture
        def dbt_assets_resources(dbt_assets_project):
            return {"warehouse": DuckDBWarehouse(path=str(dbt_assets_project.duckdb_path))}
    """
        },
    )
    _fidelity(pytester, "+order_events")


def test_shop_with_fetch_row_counts_same_through_worker_and_subprocess(shop_repo: pytest.Pytester) -> None:
    # A body that asks dagster-dbt for row counts exercises its in-process dbt adapter too.
    definitions = shop_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(
        definitions.read_text().replace(
            'yield from dbt.cli(["build"], context=context).stream()',
            'yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()',
        )
    )
    _fidelity(shop_repo, "+customers +orders")


def test_synthetic_project_same_through_worker_and_subprocess(pytester: pytest.Pytester) -> None:
    # A layered project from the benchmark generator: seeds, staging views, joined
    # intermediate tables, marts with tests.
    generated = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/generate_project.py"), "30", str(pytester.path / "repo")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    shutil.copytree(pytester.path / "repo", pytester.path, dirs_exist_ok=True)
    _fidelity(pytester, "+mart_000")
