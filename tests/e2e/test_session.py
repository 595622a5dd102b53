"""The session object's start-up: the temporary copy the early parse was made in becomes the
session's project (no second copy), under pytest's basetemp, and nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.repos import run_pytest, write_files

pytestmark = pytest.mark.e2e

# The user's conftest writes a model into the dbt project at import, i.e. after the plugin made
# its manifest and before the first fixture: the temporary project must hold the files that
# manifest was made from, not a later state of the tree.
LATE_MODEL_CONFTEST = """
    from pathlib import Path

    import shop_dagster.definitions  # noqa: F401  (a conftest that imports the Dagster package)

    Path(__file__).parent.joinpath("shop/models/marts/late.sql").write_text("select 1 as id")
"""

PROJECT_TEST = """
    def test_project(dbt_assets_project, tmp_path_factory):
        project_dir = dbt_assets_project.project_dir
        assert project_dir.is_relative_to(tmp_path_factory.getbasetemp())
        assert (project_dir / "models/marts/customers.sql").is_file()
        assert not (project_dir / "models/marts/late.sql").exists()
        assert "model.shop.late" not in dbt_assets_project.manifest["nodes"]
        assert not (project_dir / "target" / "partial_parse.msgpack").exists()
        assert (dbt_assets_project.profiles_dir / "profiles.yml").read_text().count(
            str(dbt_assets_project.duckdb_path)
        ) == 1
"""


def test_the_project_is_the_copy_the_manifest_was_made_from(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"conftest.py": LATE_MODEL_CONFTEST, "tests/test_project.py": PROJECT_TEST})
    shop_repo.runpytest().assert_outcomes(passed=1)


def test_no_temporary_copy_is_left_behind_under_xdist(shop_repo: pytest.Pytester, tmp_path: Path) -> None:
    """The xdist controller parses too but never builds the project: its copy is removed at
    the end of the session, as are the workers' (moved into their basetemp)."""
    write_files(shop_repo.path, {"tests/test_project.py": PROJECT_TEST})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = run_pytest(shop_repo.path, "-n", "2", "-p", "xdist", env={**os.environ, "TMPDIR": str(tmpdir)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout, run.stdout
    assert sorted(path.name for path in tmpdir.glob("pytest-dbt-assets-*")) == []


def test_a_graph_only_session_loads_no_materialization_machinery(shop_repo: pytest.Pytester) -> None:
    """A session whose tests only look at the graph pays for no more than that: the plugin's
    materialization modules are not imported, and no dbt worker serves (the one started with
    the session to import dbt early is stopped once collection shows no test needs it)."""
    write_files(
        shop_repo.path,
        {
            "tests/test_graph.py": """
                import os
                import sys
                from pathlib import Path


                def _dbt_workers():
                    # Child processes of this pytest running the dbt worker's server.
                    found = []
                    for stat in Path("/proc").glob("[0-9]*/stat"):
                        try:
                            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                            cmdline = (stat.parent / "cmdline").read_bytes()
                        except (OSError, IndexError, ValueError):
                            continue
                        if ppid == os.getpid() and b"pytest_dbt_assets.dbt.server" in cmdline:
                            found.append(stat.parent.name)
                    return found


                def test_graph(dbt_asset_graph, tmp_path_factory):
                    assert "acme/marts/customers" in dbt_asset_graph.keys
                    assert "pytest_dbt_assets.materialize" not in sys.modules
                    assert "pytest_dbt_assets.failures" not in sys.modules
                    assert not list(tmp_path_factory.getbasetemp().glob("dbt_assets_worker*"))
                    assert _dbt_workers() == []
            """
        },
    )
    run = run_pytest(shop_repo.path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_every_asset_spec_carries_the_moved_dbt_project(shop_repo: pytest.Pytester) -> None:
    """Each spec of an ``@dbt_assets(project=...)`` carries a DbtProject pointing at the
    temporary copy; they share one, as the user's specs share theirs."""
    write_files(
        shop_repo.path,
        {
            "tests/test_defs.py": """
                from dagster_dbt import DbtProject


                def test_projects(dbt_assets_defs, dbt_assets_project):
                    carried = [
                        value
                        for assets_def in dbt_assets_defs.assets
                        for spec in getattr(assets_def, "specs", ())
                        for value in spec.metadata.values()
                        if isinstance(value, DbtProject)
                    ]
                    assert len(carried) > 1
                    assert len({id(value) for value in carried}) == 1
                    assert carried[0].project_dir == dbt_assets_project.project_dir
                    assert carried[0].profiles_dir == dbt_assets_project.profiles_dir
                    assert carried[0].manifest_path == dbt_assets_project.target_dir / "manifest.json"
            """
        },
    )
    shop_repo.runpytest().assert_outcomes(passed=1)
