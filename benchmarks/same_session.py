"""One process, one project, both paths: the plugin's materialization and dagster's plain
``materialize`` with a ``DbtCliResource``, alternating, on example_project.

    python benchmarks/same_session.py --repeat 5

Each run starts from an empty DuckDB in a temp folder. Prints the wall time of each run
and the medians. Measurement only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    from dagster import materialize
    from dagster_dbt import DbtCliResource

    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.definitions import import_definitions
    from pytest_dbt_assets.manifest import load_manifest, write_user_manifest
    from pytest_dbt_assets.materialize import materialize_assets
    from pytest_dbt_assets.project import build_project
    from pytest_dbt_assets.relocate import relocate_definitions

    work = Path(tempfile.mkdtemp(prefix="same-session-"))
    repo = work / "repo"
    shutil.copytree(ROOT / "example_project", repo, ignore=shutil.ignore_patterns("target", "__pycache__"))
    project = build_project(repo / "jaffle_dbt", work)
    load_manifest(project, None)
    write_user_manifest(project)
    defs = relocate_definitions(import_definitions("jaffle_dagster.definitions:defs", repo), project)
    from jaffle_dagster.resources import DuckDBWarehouse  # the example's own resource

    warehouse = {"warehouse": DuckDBWarehouse(path=str(project.duckdb_path))}
    worker = DbtWorker(work / "worker")
    worker.start()
    worker.prepare_build(project)
    plain_dbt = DbtCliResource(project_dir=str(project.project_dir), profiles_dir=str(project.profiles_dir))
    assets = list(defs.assets or [])
    timings: dict[str, list[float]] = {"plugin fixture (worker)": [], "dagster.materialize + DbtCliResource": []}
    try:
        for index in range(args.repeat):
            for name, values in timings.items():
                project.reset_database()
                started = time.perf_counter()
                if name.startswith("plugin"):
                    ok = materialize_assets(
                        defs,
                        project,
                        resources=warehouse,
                        data_dir=repo / "data",
                        dbt_executable=str(worker.executable),
                    ).success
                else:
                    # The same source data the plugin loads from data/, then dagster-dbt by hand.
                    from pytest_dbt_assets.database import load_sources

                    load_sources(
                        project.duckdb_path, project.manifest["sources"].values(), provided={}, data_dir=repo / "data"
                    )
                    ok = materialize(assets, resources={**warehouse, "dbt": plain_dbt}).success
                elapsed = time.perf_counter() - started
                values.append(elapsed)
                print(f"run {index + 1} {name}: {elapsed:.2f} s ({'ok' if ok else 'FAILED'})", flush=True)
    finally:
        worker.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| path | median wall time |\n|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
