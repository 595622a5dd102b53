"""One process, one project, both paths: the plugin's materialization and dagster's plain
``materialize`` with a ``DbtCliResource``, alternating, on example_project.

    python benchmarks/same_session.py --repeat 5

Each run starts from an empty DuckDB in a temp folder. Prints the wall time of each run
and the medians. Measurement only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from dagster import materialize
    from dagster_dbt import DbtCliResource

    from pytest_dbt_assets.database import load_sources
    from pytest_dbt_assets.session import DbtAssetsSession
    from pytest_dbt_assets.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="same-session-"))
    repo = work / "repo"
    shutil.copytree(ROOT / "example_project", repo, ignore=shutil.ignore_patterns("target", "__pycache__"))
    # The plugin's own sequence, as its fixtures run it: the same session object.
    session = DbtAssetsSession(
        Settings(
            rootdir=repo,
            project_dir=repo / "jaffle_dbt",
            definitions="jaffle_dagster.definitions:defs",
            data_dir=repo / "data",
        )
    )
    try:
        session.start()  # the manifest, made before the definitions are imported; dbt on PATH
        (work / "project").mkdir()
        project = session.build_project(work / "project")
        defs = session.load_definitions(project)
        from jaffle_dagster.resources import DuckDBWarehouse  # the example's own resource

        warehouse = {"warehouse": DuckDBWarehouse(path=str(project.duckdb_path))}
        (work / "basetemp").mkdir()
        session.launch_worker(work / "basetemp", lambda prefix: work / "basetemp" / f"{prefix}0")
        executable = session.dbt_executable(project)
        plain_dbt = DbtCliResource(project_dir=str(project.project_dir), profiles_dir=str(project.profiles_dir))
        assets = list(defs.assets or [])
        timings: dict[str, list[float]] = {"plugin fixture (worker)": [], "dagster.materialize + DbtCliResource": []}
        for index in range(args.repeat):
            for name, values in timings.items():
                project.reset_database()
                started = time.perf_counter()
                if name.startswith("plugin"):
                    ok = session.materialize(defs, project, resources=warehouse, dbt_executable=executable).success
                else:
                    # The same source data the plugin loads from data/, then dagster-dbt by hand.
                    load_sources(
                        project.duckdb_path, project.manifest["sources"].values(), provided={}, data_dir=repo / "data"
                    )
                    ok = materialize(assets, resources={**warehouse, "dbt": plain_dbt}).success
                elapsed = time.perf_counter() - started
                values.append(elapsed)
                print(f"run {index + 1} {name}: {elapsed:.2f} s ({'ok' if ok else 'FAILED'})", flush=True)
    finally:
        session.close()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| path | median wall time |\n|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
