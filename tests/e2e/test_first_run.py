"""The user's repo as it is, on its first run: the manifest is the plugin's before any user
module is imported (fresh clone, stale manifest, changed ref, xdist, an early import), dbt
beside Python without PATH, and read-only trees.

The repo is laid out as `dagster-dbt project scaffold` makes it: the Dagster project inside
the dbt project, its `project.py` / `assets.py` / `definitions.py`, and tests whose conftest
and modules import the package (which reads `target/manifest.json` at import).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repos import run_pytest, write_files

# Fresh clones and what the plugin keeps in the project's cache: each session keeps its own.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("own_cache")]

DBT_FILES = {
    "dbt_project.yml": """
        name: shop
        profile: shop
        models:
          shop:
            +materialized: table
    """,
    # The user's own profile: another DuckDB database name than the plugin's.
    "profiles.yml": """
        shop:
          target: dev
          outputs:
            dev:
              type: duckdb
              path: other.duckdb
    """,
    "seeds/raw_orders.csv": """
        id,customer_id,amount
        10,1,5
        11,1,7
        12,2,3
    """,
    "models/stg_orders.sql": "select id as order_id, customer_id, amount from {{ ref('raw_orders') }}",
    "models/stg_customers.sql": "select distinct customer_id from {{ ref('raw_orders') }}",
    "models/orders.sql": "select * from {{ ref('stg_orders') }}",
}

DAGSTER_FILES = {
    "shop_dagster/pyproject.toml": """
        [tool.pytest.ini_options]
        pythonpath = ["."]
        dbt_assets_project_dir = ".."
        dbt_assets_definitions = "shop_dagster.definitions:defs"
        filterwarnings = ["ignore::DeprecationWarning:dagster_dbt.*", "ignore::DeprecationWarning:sqlglotrs.*"]
    """,
    "shop_dagster/shop_dagster/__init__.py": "",
    "shop_dagster/shop_dagster/project.py": """
        from pathlib import Path

        from dagster_dbt import DbtProject

        shop_project = DbtProject(project_dir=Path(__file__).joinpath("..", "..", "..").resolve())
        shop_project.prepare_if_dev()
    """,
    "shop_dagster/shop_dagster/assets.py": """
        import dagster as dg
        from dagster_dbt import DbtCliResource, dbt_assets, get_asset_key_for_model

        from .project import shop_project


        class Warehouse(dg.ConfigurableResource):
            path: str = "prod.duckdb"


        @dbt_assets(manifest=shop_project.manifest_path)
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        @dg.asset(deps=[get_asset_key_for_model([shop_dbt_assets], "orders")])
        def order_report(warehouse: Warehouse):
            return dg.MaterializeResult(metadata={"warehouse": warehouse.path})
    """,
    "shop_dagster/shop_dagster/definitions.py": """
        import dagster as dg
        from dagster_dbt import DbtCliResource

        from .assets import Warehouse, order_report, shop_dbt_assets
        from .project import shop_project

        defs = dg.Definitions(
            assets=[shop_dbt_assets, order_report],
            resources={"dbt": DbtCliResource(project_dir=shop_project), "warehouse": Warehouse()},
        )
    """,
    "shop_dagster/tests/conftest.py": """
        import pytest

        from shop_dagster.assets import Warehouse


        @pytest.fixture
        def dbt_assets_resources(dbt_assets_project):
            return {"warehouse": Warehouse(path=str(dbt_assets_project.duckdb_path))}
    """,
    "shop_dagster/tests/test_assets.py": """
        from dagster_dbt import get_asset_key_for_model

        from shop_dagster.assets import shop_dbt_assets

        ORDERS = get_asset_key_for_model([shop_dbt_assets], "orders").to_user_string()


        def test_graph(dbt_asset_graph):
            assert dbt_asset_graph.deps[ORDERS] == ["stg_orders"]
    """,
}

MATERIALIZE_TEST = """
    def test_orders(dbt_assets_materialize):
        result = dbt_assets_materialize(dbt_select="+orders")
        assert result.row_counts["orders"] == 3
"""

SNAPSHOT_TEST = """
    def test_graph_snapshot(dbt_asset_graph, dbt_assets_snapshot):
        assert dbt_asset_graph == dbt_assets_snapshot
"""

# A plugin of the user's, passed with -p, that imports their Dagster package before conftest.py.
EARLY_IMPORT_PLUGIN = """
    import shop_dagster.definitions  # noqa: F401
"""

ORDERS_FROM_CUSTOMERS = "select c.customer_id from {{ ref('stg_customers') }} c"


@pytest.fixture
def scaffold_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A fresh clone (no target/) of a scaffold-shaped repo; pytest runs from its Dagster project."""
    write_files(pytester.path, {**DBT_FILES, **DAGSTER_FILES})
    monkeypatch.chdir(pytester.path / "shop_dagster")
    return pytester


def _manifest(repo: Path) -> dict:
    return json.loads((repo / "target" / "manifest.json").read_text(encoding="utf-8"))


def _databases(manifest: dict) -> set[str]:
    return {node["database"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def test_fresh_clone_passes_and_gets_the_plugins_manifest(scaffold_repo: pytest.Pytester) -> None:
    assert not (scaffold_repo.path / "target").exists()
    result = scaffold_repo.runpytest()
    result.assert_outcomes(passed=1)
    assert _databases(_manifest(scaffold_repo.path)) == {"dbt_assets"}
    assert "DagsterDbtManifestNotFoundError" not in result.stdout.str()


def test_stale_manifest_from_the_users_own_parse_is_replaced(scaffold_repo: pytest.Pytester) -> None:
    from dbt.cli.main import dbtRunner

    from pytest_dbt_assets.dbt.runner import release_duckdb

    repo = str(scaffold_repo.path)
    try:
        parsed = dbtRunner().invoke(["parse", "--project-dir", repo, "--profiles-dir", repo, "--quiet"])
    finally:
        release_duckdb()
    assert parsed.success
    assert _databases(_manifest(scaffold_repo.path)) == {"other"}  # the user's dev database

    write_files(scaffold_repo.path, {"shop_dagster/tests/test_run.py": MATERIALIZE_TEST})
    result = scaffold_repo.runpytest()
    result.assert_outcomes(passed=2)
    assert _databases(_manifest(scaffold_repo.path)) == {"dbt_assets"}


def test_changed_ref_fails_the_graph_snapshot_on_the_first_run(scaffold_repo: pytest.Pytester) -> None:
    write_files(scaffold_repo.path, {"shop_dagster/tests/test_snapshot.py": SNAPSHOT_TEST})
    scaffold_repo.runpytest("--snapshot-update", "-k", "snapshot").assert_outcomes(passed=1)

    write_files(scaffold_repo.path, {"models/orders.sql": ORDERS_FROM_CUSTOMERS})
    result = scaffold_repo.runpytest("-k", "snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stg_customers*"])


def test_definitions_imported_before_the_plugin_fail_with_one_message(scaffold_repo: pytest.Pytester) -> None:
    write_files(scaffold_repo.path, {"shop_dagster/early_import.py": EARLY_IMPORT_PLUGIN})
    scaffold_repo.runpytest().assert_outcomes(passed=1)  # target/manifest.json is now the plugin's

    write_files(scaffold_repo.path, {"models/orders.sql": ORDERS_FROM_CUSTOMERS})
    result = scaffold_repo.runpytest("-p", "early_import")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "DefinitionsError: @dbt_assets 'shop_dbt_assets'" in output
    assert "was built from another manifest than the plugin's" in output
    assert "different code, parents or relation: model.shop.orders" in output
    assert "imported before the plugin could make" in output
    assert "Traceback" not in output

    # The file on disk is the plugin's now: the next run passes its (new) graph test.
    write_files(
        scaffold_repo.path,
        {
            "shop_dagster/tests/test_assets.py": DAGSTER_FILES["shop_dagster/tests/test_assets.py"].replace(
                '["stg_orders"]', '["stg_customers"]'
            )
        },
    )
    scaffold_repo.runpytest("-p", "early_import").assert_outcomes(passed=1)


def _fresh_copy(pytester: pytest.Pytester, name: str) -> Path:
    repo = pytester.path.parent / f"{pytester.path.name}-{name}"
    write_files(repo, {**DBT_FILES, **DAGSTER_FILES, "shop_dagster/tests/test_run.py": MATERIALIZE_TEST})
    return repo


def _env(**changes: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **changes}


def test_xdist_fresh_clone(pytester: pytest.Pytester) -> None:
    repo = _fresh_copy(pytester, "xdist")
    run = run_pytest(repo / "shop_dagster", "-n", "2", env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    assert len(list((repo / "target" / "dbt_assets_cache").glob("*.json"))) == 1
    assert _databases(_manifest(repo)) == {"dbt_assets"}


def test_venv_pytest_without_the_venv_on_path(pytester: pytest.Pytester) -> None:
    """What an IDE does: `.venv/bin/python -m pytest` with a PATH that lacks `.venv/bin`."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not shutil.which("dbt", path=p))
    assert shutil.which("dbt", path=path) is None
    assert (Path(sys.executable).parent / "dbt").exists()
    repo = _fresh_copy(pytester, "ide")
    # The subprocess runner: dagster-dbt itself runs `dbt build`, found the same way.
    run = run_pytest(repo / "shop_dagster", "--dbt-assets-runner=subprocess", env=_env(PATH=path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def _read_only_mounts_work(probe: Path) -> bool:
    probe.mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && ! touch "$0/x" 2>/dev/null'
    try:
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, str(probe)], check=False, capture_output=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and not (probe / "x").exists()


def _run_read_only(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh interpreter, in a mount namespace where ``repo`` is read-only (as a
    `docker -v repo:/src:ro` job sees it): EROFS for everyone, root included."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && cd "$0/shop_dagster" && exec "$@"'
    return subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            str(repo),
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_read_only_tree(pytester: pytest.Pytester) -> None:
    if not _read_only_mounts_work(pytester.path / "probe"):
        pytest.skip("no read-only tree can be made here: `unshare -m` with a read-only bind mount is not permitted")
    repo = _fresh_copy(pytester, "ro")
    before = _tree(repo)

    # A fresh clone mounted read-only, its Dagster code on `DbtProject`: the project reads the
    # plugin's own manifest; it passes and nothing is written into the tree.
    run = _run_read_only(repo)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "2 passed" in run.stdout
    assert "Traceback" not in output
    assert _tree(repo) == before

    # A changed model under a read-only, out-of-date target/: the changed model is the one built
    # (the user's tests, written for the old one, fail on their own assertions).
    assert run_pytest(repo / "shop_dagster", env=_env()).returncode == 0
    write_files(repo, {"models/orders.sql": ORDERS_FROM_CUSTOMERS})
    run = _run_read_only(repo)
    output = run.stdout + run.stderr
    assert "2 failed" in run.stdout and "assert 2 == 3" in run.stdout, output
    assert "out of date" not in output and "Traceback" not in output
    write_files(repo, {"models/orders.sql": DBT_FILES["models/orders.sql"]})

    # The plugin's manifest written by an earlier writable run, the cache gone: it runs, warned once.
    shutil.rmtree(repo / "target" / "dbt_assets_cache")
    run = _run_read_only(repo)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "2 passed" in run.stdout
    assert output.count("running without the manifest cache") == 1
    assert "Traceback" not in output


def test_read_only_tree_with_a_literal_manifest_path(pytester: pytest.Pytester) -> None:
    """A manifest named by its path cannot be pointed elsewhere: one message, with the fix."""
    if not _read_only_mounts_work(pytester.path / "probe"):
        pytest.skip("no read-only tree can be made here: `unshare -m` with a read-only bind mount is not permitted")
    repo = _fresh_copy(pytester, "literal")
    assets = repo / "shop_dagster" / "shop_dagster" / "assets.py"
    literal = 'Path(__file__).parents[2] / "target" / "manifest.json"'
    assets.write_text(
        "from pathlib import Path\n" + assets.read_text().replace("shop_project.manifest_path", literal),
        encoding="utf-8",
    )

    run = _run_read_only(repo)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"{repo}/target/manifest.json does not exist, and the plugin cannot replace it" in output
    assert "Read-only file system" in output
    assert "Use `DbtProject(...).manifest_path`, or make " + str(repo / "target") + " writable" in output
    assert "Traceback" not in output and "OSError" not in output

    # An out-of-date manifest there: named, with the fix.
    assert run_pytest(repo / "shop_dagster", env=_env()).returncode == 0
    write_files(repo, {"models/orders.sql": ORDERS_FROM_CUSTOMERS})
    run = _run_read_only(repo)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"{repo}/target/manifest.json is out of date" in output
    assert "cannot be written (Read-only file system)" in output
    assert "Traceback" not in output and "OSError" not in output


def _tree(repo: Path) -> set[str]:
    return {str(path.relative_to(repo)) for path in repo.rglob("*") if "__pycache__" not in path.parts}


def test_a_session_without_a_dbt_project_pays_nothing(pytester: pytest.Pytester) -> None:
    """No dbt project configured or found: the early hook neither parses nor imports dbt."""
    write_files(
        pytester.path,
        {
            "pyproject.toml": "[tool.pytest.ini_options]\n",
            "test_plain.py": """
                import sys


                def test_nothing_loaded():
                    assert "pytest_dbt_assets.manifest" not in sys.modules
                    assert "dbt.cli.main" not in sys.modules
            """,
        },
    )
    run = run_pytest(pytester.path, env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (pytester.path / "target").exists()


def test_no_dbt_anywhere_is_one_environment_message(
    scaffold_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No dbt on PATH and none beside Python (a Python without dbt installed): the import of
    the package that creates the DbtCliResource fails with one message about the environment,
    from the definitions fixture or from conftest.py, never a traceback."""
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.touch()
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setenv("PATH", str(python.parent))
    result = scaffold_repo.runpytest()
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "dbt_executable: The dbt executable 'dbt' was not found on PATH." in output
    assert "set `dbt_executable` to its path.\nThis is a problem of the environment, not of your code" in output
    assert "Fix the error in your code" not in output and "Traceback" not in output

    write_files(scaffold_repo.path, {"shop_dagster/tests/conftest.py": "import shop_dagster.definitions\n"})
    result = scaffold_repo.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "ERROR: The dbt executable 'dbt' was not found on PATH." in errors
    assert "This is a problem of the environment, not of your code" in errors
    assert "Traceback" not in errors and "conftest.py:" not in errors
