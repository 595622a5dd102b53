"""The session baseline: ``@pytest.mark.dbt_assets(baseline=True)`` /
``dbt_assets_materialize(..., baseline=True)`` start the test's database from a template built
once per run, and the call builds only its own selection on it.

The ``shop`` repo gets a source fed from the data folder and a mart on top of a mart, so the
baseline holds seeds, views, tables and a loaded source.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.repos import SHOP_INI, run_pytest, write_files

# Fresh clones and what the plugin keeps in the project's cache: each session keeps its own.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("own_cache")]

SEGMENT_FILES: dict[str, str] = {
    "data/crm/segments.csv": """
        customer_id,segment
        1,gold
        2,silver
        3,gold
    """,
    "shop/models/staging/sources.yml": """
        version: 2
        sources:
          - name: crm
            schema: crm
            tables:
              - name: segments
    """,
    "shop/models/staging/stg_segments.sql": "select customer_id, segment from {{ source('crm', 'segments') }}",
    "shop/models/marts/customer_segments.sql": """
        select c.customer_id, c.name, c.orders, s.segment
        from {{ ref('customers') }} c
        join {{ ref('stg_segments') }} s using (customer_id)
    """,
    "shop/models/marts/segments_schema.yml": """
        version: 2
        models:
          - name: customer_segments
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
              - name: segment
                data_tests:
                  - accepted_values:
                      arguments:
                        values: [gold, silver]
    """,
}
DATA_INI = SHOP_INI + 'dbt_assets_data_dir = "data"\n'

# Writes what one test built of customer_segments: the table's rows and columns as DuckDB
# holds them, the mart's checks, and what the Materialization says.
DUMP = """
    import json
    from pathlib import Path


    def dump(name, project, result):
        rows = project.query("select * from main.customer_segments order by all")
        columns = project.query(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'customer_segments' order by ordinal_position"
        )
        Path(name + ".json").write_text(
            json.dumps(
                {
                    "rows": rows,
                    "columns": columns,
                    "checks": {k: v for k, v in result.checks.items() if "customer_segments" in k},
                    "materialized": result.materialized,
                    "row_counts": result.row_counts,
                    "summary": result.summary(),
                },
                default=str,
            )
        )
"""


@pytest.fixture
def segments_repo(shop_repo: pytest.Pytester) -> pytest.Pytester:
    write_files(shop_repo.path, {**SEGMENT_FILES, "pyproject.toml": DATA_INI, "tests/dump.py": DUMP})
    return shop_repo


# A mart built on the baseline equals the mart built from scratch (test_marts.py); what the
# baseline refuses (test_refused.py, two of its tests fail on purpose). One session, one baseline.
MART_FILES: dict[str, str] = {
    "tests/test_marts.py": """
                import pytest

                from dump import dump


                @pytest.mark.dbt_assets(baseline=True)
                def test_on_baseline(dbt_assets_materialize, dbt_assets_project):
                    dump("baseline", dbt_assets_project, dbt_assets_materialize(dbt_select="customer_segments"))


                def test_from_scratch(dbt_assets_materialize, dbt_assets_project):
                    dump("scratch", dbt_assets_project, dbt_assets_materialize(dbt_select="+customer_segments"))


                def test_call_argument(dbt_assets_materialize, dbt_assets_project):
                    dump("argument", dbt_assets_project, dbt_assets_materialize(dbt_select="customer_segments", baseline=True))
            """,
    "tests/conftest.py": "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent))\n",
}

REFUSED_FILES: dict[str, str] = {
    "tests/test_refused.py": """
                import pytest

                from pytest_dbt_assets.errors import BaselineError


                @pytest.mark.dbt_assets(baseline=True)
                def test_second_call_builds_on_the_test_database(dbt_assets_materialize, dbt_assets_project):
                    dbt_assets_materialize(dbt_select="customer_segments")
                    # Later calls build on what the test's database holds; no baseline argument needed.
                    again = dbt_assets_materialize(dbt_select="stg_segments")
                    assert again.materialized == ["acme/staging/stg_segments"]
                    assert dbt_assets_project.query("select count(*) from main.customer_segments") == [(3,)]
                    with pytest.raises(BaselineError) as refused:
                        dbt_assets_materialize(dbt_select="customers", baseline=False)
                    print("LATER:", refused.value)


                def test_later_call_cannot_ask_for_the_baseline(dbt_assets_materialize):
                    dbt_assets_materialize(dbt_select="+stg_segments")
                    with pytest.raises(BaselineError) as refused:
                        dbt_assets_materialize(dbt_select="customers", baseline=True)
                    print("LATER-TRUE:", refused.value)


                @pytest.mark.dbt_assets(baseline=True, data={"crm.segments": [{"customer_id": 1, "segment": "gold"}]})
                def test_rows_for_a_source_the_baseline_loaded(dbt_assets_materialize):
                    dbt_assets_materialize(dbt_select="customer_segments")


                @pytest.mark.dbt_assets(baseline="yes")
                def test_not_a_bool(dbt_assets_materialize):
                    dbt_assets_materialize(dbt_select="customer_segments")
            """,
}


def test_a_mart_on_the_baseline_equals_the_mart_built_from_scratch_and_what_it_refuses(
    segments_repo: pytest.Pytester,
) -> None:
    write_files(segments_repo.path, {**MART_FILES, **REFUSED_FILES})
    result = segments_repo.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=2)
    on_baseline, scratch, argument = (
        json.loads((segments_repo.path / f"{name}.json").read_text()) for name in ("baseline", "scratch", "argument")
    )
    mart = "acme/marts/customer_segments"
    # The same table: rows, columns and types, and the mart's dbt tests with the same results.
    assert scratch["rows"] == [[1, "Ann", 2, "gold"], [2, "Bob", 1, "silver"], [3, "Cy", 1, "gold"]]
    assert on_baseline["rows"] == argument["rows"] == scratch["rows"]
    assert on_baseline["columns"] == argument["columns"] == scratch["columns"]
    assert len(scratch["checks"]) == 3 and set(scratch["checks"].values()) == {"passed"}
    assert on_baseline["checks"] == argument["checks"] == scratch["checks"]
    # What the test built, and only that: no upstream asset, no upstream check.
    assert on_baseline["materialized"] == argument["materialized"] == [mart]
    assert list(on_baseline["row_counts"]) == [mart] and on_baseline["row_counts"][mart] == 3
    assert on_baseline["summary"]["checks"] == scratch["checks"]
    assert len(scratch["materialized"]) == 7 and mart in scratch["materialized"]

    out = result.stdout.str()
    assert (
        "LATER: dbt_assets_materialize(baseline=False) in a later call of this test: the test's database "
        "started as a copy of the session baseline at its first call"
    ) in out
    assert "LATER-TRUE: dbt_assets_materialize(baseline=True) in a later call of this test" in out
    assert "started as an empty database" in out
    assert "Pass baseline=True to the first call (or mark the test @pytest.mark.dbt_assets(baseline=True))" in out
    assert (
        "BaselineError: baseline=True asks to start from the session baseline, but the test gives rows for "
        "source crm.segments (marker data= or the dbt_assets_data fixture), which the baseline (the whole "
        "dbt project (no dbt_assets_baseline_select)) already loaded from dbt_assets_data_dir"
    ) in out
    assert "BaselineError: @pytest.mark.dbt_assets(baseline=...) takes True or False, not 'yes'." in out
    assert "Traceback" not in out


def test_a_baseline_that_does_not_build_fails_its_tests_with_dbt_s_error(segments_repo: pytest.Pytester) -> None:
    write_files(
        segments_repo.path,
        {
            "shop/models/staging/stg_orders.sql": "select id as order_id, customer_id, amount, no_such_column from {{ ref('raw_orders') }}",
            "tests/test_broken.py": """
                import pytest


                @pytest.mark.dbt_assets(baseline=True)
                @pytest.mark.parametrize("n", [1, 2])
                def test_on_baseline(dbt_assets_materialize, n):
                    dbt_assets_materialize(dbt_select="customer_segments")


                def test_without_baseline(dbt_assets_materialize):
                    assert dbt_assets_materialize(dbt_select="+stg_segments").success
            """,
        },
    )
    basetemp = segments_repo.path / "basetemp"
    result = segments_repo.runpytest("--dbt-assets-baseline-select", "+customer_segments", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    # Counted in the tracebacks' "E" lines: with CI set, pytest's short summary repeats them untruncated.
    raised = [
        line
        for line in out.splitlines()
        if line.startswith("E ")
        and "BaselineError: The session baseline (dbt_assets_baseline_select = '+customer_segments') could not be built"
        in line
    ]
    assert len(raised) == 2, out
    assert "dbt model stg_orders (models/staging/stg_orders.sql) failed" in out
    assert "no_such_column" in out
    # Built (and failed) once: the second test reports the first build's failure.
    assert len(list(basetemp.glob("dbt_assets_baseline/*/failed.txt"))) == 1
    assert "MaterializationError: Materialization failed:" in out
    # Built (and failed) once: the second test reports the first build's failure without
    # running dbt; test_without_baseline runs dbt once.
    assert len(list(basetemp.glob("dbt_assets0/project/target/dbt_assets_runs/run-*"))) == 2


def test_the_baseline_select_limits_what_the_baseline_holds(segments_repo: pytest.Pytester) -> None:
    write_files(
        segments_repo.path,
        {
            "tests/test_narrow.py": """
                import pytest


                @pytest.mark.dbt_assets(baseline=True)
                def test_on_baseline(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="stg_customers")
                    assert result.materialized == ["acme/staging/stg_customers"]
                    tables = dbt_assets_project.query(
                        "select table_name from information_schema.tables order by 1"
                    )
                    # raw_customers from the baseline, stg_customers built here; nothing else.
                    assert tables == [("raw_customers",), ("stg_customers",)]
            """,
        },
    )
    segments_repo.runpytest("--dbt-assets-baseline-select", "raw_customers").assert_outcomes(passed=1)


# Drives the session object (pytest-free, as the benchmarks do) in a fresh interpreter, with
# one baseline folder for every run: what a folder shared across sessions would see.
SESSION_SCRIPT = """
    import sys
    import tempfile
    from pathlib import Path

    from pytest_dbt_assets.session import DbtAssetsSession
    from pytest_dbt_assets.settings import Settings

    repo, work, select = Path.cwd(), Path(sys.argv[1]), sys.argv[2] or None
    session = DbtAssetsSession(
        Settings(
            rootdir=repo,
            project_dir=repo / "shop",
            definitions="shop_dagster.definitions:defs",
            data_dir=repo / "data",
            runner="worker",
            baseline_select=select,
        )
    )
    sys.path.insert(0, str(repo))
    try:
        session.start()
        work.mkdir()
        # The session's dbt worker, launched as the plugin's fixtures do.
        dbt_temp = work.with_name(work.name + "-dbt")
        dbt_temp.mkdir()
        session.launch_worker(dbt_temp, lambda prefix: Path(tempfile.mkdtemp(prefix=prefix, dir=dbt_temp)))
        project = session.build_project(work)
        defs = session.load_definitions(project)
        result = session.materialize(
            defs,
            project,
            dbt_select="customers",
            baseline_folder=repo / "shared",
            dbt_executable=session.dbt_executable(project),
        )
        assert result.materialized == ["acme/marts/customers"], result.materialized
        print("NAMES:", [row[0] for row in project.query("select name from main.stg_customers order by 1")])
    finally:
        session.close()
"""


def test_a_changed_model_or_baseline_select_never_reuses_a_stale_template(segments_repo: pytest.Pytester) -> None:
    write_files(segments_repo.path, {"drive.py": SESSION_SCRIPT})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def session(work: str, select: str = "") -> str:
        run = run_pytest_script(segments_repo.path, work, select, env)
        assert run.returncode == 0, run.stdout + run.stderr
        return next(line for line in run.stdout.splitlines() if line.startswith("NAMES:"))

    assert session("one") == "NAMES: ['Ann', 'Bob', 'Cy']"
    assert session("two") == "NAMES: ['Ann', 'Bob', 'Cy']"  # same content: the template is reused
    stg = segments_repo.path / "shop/models/staging/stg_customers.sql"
    stg.write_text("select id as customer_id, upper(name) as name from {{ ref('raw_customers') }}")
    assert session("three") == "NAMES: ['ANN', 'BOB', 'CY']"
    assert session("four", "+stg_customers +stg_orders") == "NAMES: ['ANN', 'BOB', 'CY']"
    log = builds_log(segments_repo.path)
    assert len(log) == 3, log
    assert "the whole dbt project" in log[1] and "dbt_assets_baseline_select = '+stg_customers +stg_orders'" in log[2]


def builds_log(repo: Path) -> list[str]:
    """The lines of the baseline's build log, kept with the templates in the shop project's
    manifest cache (one line per build, whichever run made it)."""
    return (repo / "shop/target/dbt_assets_cache/dbt_assets_baseline/builds.log").read_text().splitlines()


ON_BASELINE_TEST = """
    import pytest


    @pytest.mark.dbt_assets(baseline=True)
    def test_on_baseline(dbt_assets_materialize):
        assert dbt_assets_materialize(dbt_select="customer_segments").row_counts == {
            "acme/marts/customer_segments": 3
        }
"""


def test_later_runs_reuse_the_template_until_the_code_around_it_changes(segments_repo: pytest.Pytester) -> None:
    """The template is kept in the project's manifest cache: the next `pytest` builds nothing.
    A changed test module keeps it; changed Dagster code (the translator, a conftest.py)
    builds again, since it shapes what the baseline's Dagster run builds."""
    write_files(segments_repo.path, {"tests/test_on_baseline.py": ON_BASELINE_TEST})

    def builds_after_a_run() -> int:
        segments_repo.runpytest().assert_outcomes(passed=1)
        return len(builds_log(segments_repo.path))

    assert builds_after_a_run() == 1
    assert builds_after_a_run() == 1, "a later run reuses the template"
    test_module = segments_repo.path / "tests/test_on_baseline.py"
    test_module.write_text(test_module.read_text() + "\n# edited\n")
    assert builds_after_a_run() == 1, "a test module is not part of the key"
    definitions = segments_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(definitions.read_text() + "\n# the translator edited\n")
    assert builds_after_a_run() == 2
    write_files(segments_repo.path, {"tests/conftest.py": "import pytest\n"})
    assert builds_after_a_run() == 3
    # The least recently used are removed: two templates at most.
    templates = segments_repo.path / "shop/target/dbt_assets_cache/dbt_assets_baseline"
    assert len([path for path in templates.iterdir() if (path / "baseline.json").is_file()]) == 2


def test_a_failed_build_is_tried_again_by_the_next_run(segments_repo: pytest.Pytester) -> None:
    """A failure is remembered for the run only: a later run builds again (the worker may have
    been killed, the machine out of memory)."""
    # A model reading a file outside the project: missing in the first run, so the baseline
    # fails there with the same content (the same key) it has in the second.
    outside = segments_repo.path.parent / f"{segments_repo.path.name}-exchange_rates.csv"
    write_files(
        segments_repo.path,
        {
            "tests/test_on_baseline.py": ON_BASELINE_TEST,
            "shop/models/staging/stg_rates.sql": f"select * from read_csv_auto('{outside}')",
        },
    )
    result = segments_repo.runpytest()
    result.assert_outcomes(failed=1)
    assert "could not be built" in result.stdout.str() and "stg_rates" in result.stdout.str()
    outside.write_text("currency,rate\nEUR,1.1\n")
    segments_repo.runpytest().assert_outcomes(passed=1)
    assert len(builds_log(segments_repo.path)) == 1


def run_pytest_script(cwd: Path, work: str, select: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.run(
        [sys.executable, "drive.py", str(cwd / work), select],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a measure
        check=False,
    )


def test_xdist_workers_build_the_template_once(segments_repo: pytest.Pytester, tmp_path: Path) -> None:
    write_files(
        segments_repo.path,
        {
            "tests/test_many.py": textwrap.dedent(
                """
                import os
                from pathlib import Path

                import pytest


                @pytest.mark.dbt_assets(baseline=True)
                @pytest.mark.parametrize("n", range(6))
                def test_on_baseline(dbt_assets_materialize, dbt_assets_project, n):
                    result = dbt_assets_materialize(dbt_select="customer_segments")
                    assert result.materialized == ["acme/marts/customer_segments"]
                    assert result.row_counts["acme/marts/customer_segments"] == 3
                    Path("worker-" + os.environ["PYTEST_XDIST_WORKER"]).touch()
                """
            ),
        },
    )
    basetemp = tmp_path / "basetemp"
    run = run_pytest(segments_repo.path, "-n", "2", "-p", "xdist", f"--basetemp={basetemp}", timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout
    assert sorted(path.name for path in segments_repo.path.glob("worker-*")) == ["worker-gw0", "worker-gw1"]
    log = builds_log(segments_repo.path)
    assert len(log) == 1, log


def test_databases_that_sources_pin_are_part_of_the_baseline(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            "pyproject.toml": DATA_INI,
            "data/erp/regions.csv": "code,name\nN,North\nS,South\n",
            "shop/models/erp/sources.yml": """
                version: 2
                sources:
                  - name: erp
                    database: raw_warehouse
                    schema: erp
                    tables:
                      - name: regions
            """,
            "shop/models/erp/erp_regions.sql": "select * from {{ source('erp', 'regions') }}",
            "shop/models/marts/region_names.sql": "select upper(name) as name from {{ ref('erp_regions') }}",
            "tests/test_pinned.py": """
                import pytest


                @pytest.mark.dbt_assets(baseline=True)
                @pytest.mark.parametrize("n", [1, 2])
                def test_on_baseline(dbt_assets_materialize, dbt_assets_project, n):
                    result = dbt_assets_materialize(dbt_select="region_names")
                    assert result.materialized == ["acme/marts/region_names"]
                    assert result.row_counts == {"acme/marts/region_names": 2}
                    assert dbt_assets_project.query("select count(*) from raw_warehouse.erp.regions") == [(2,)]
            """,
        },
    )
    shop_repo.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
