"""Floor (d): dbt's own in-process runner, warm.

Parse once with `dbtRunner`, then time only `dbtRunner(manifest=...).invoke(["build", ...])`
for `--select` and for everything, each on an empty DuckDB. Prints the timings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import load_source_files, report, reset_duckdb


def release_duckdb() -> None:
    """dbt-duckdb keeps its database handle for the process; drop it so a reset file is reopened."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--profiles-dir", type=Path, required=True)
    parser.add_argument("--duckdb", type=Path, required=True)
    parser.add_argument("--select", required=True, help="dbt selection, e.g. +my_mart")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    from dbt.cli.main import dbtRunner

    flags = ["--project-dir", str(args.project_dir), "--profiles-dir", str(args.profiles_dir), "--quiet"]
    parsed = dbtRunner().invoke(["parse", *flags])
    assert parsed.success, parsed.exception
    timings: dict[str, float] = {}
    for name, select in (("select", ["--select", *args.select.split()]), ("all", [])):
        release_duckdb()
        reset_duckdb(args.duckdb)
        load_source_files(args.duckdb, args.data_dir)
        # A build compiles ephemeral models into the manifest it is given; reusing that one
        # breaks the next build, so each starts from an untouched copy.
        manifest = parsed.result.deepcopy()
        start = time.perf_counter()
        result = dbtRunner(manifest=manifest).invoke(["build", *flags, *select])
        timings[name] = time.perf_counter() - start
        assert result.success, result.exception
    report(timings)


if __name__ == "__main__":
    main()
