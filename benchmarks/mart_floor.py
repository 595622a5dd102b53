"""Floor of a one-mart test on a baseline: dbt's own in-process runner building one mart alone.

Parse once with `dbtRunner`, build the whole project once (what a session baseline holds),
then time only `dbtRunner(manifest=...).invoke(["build", "--select", mart])` for each
`--marts` on that database, whose upstream relations already exist. Prints the timings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import report, reset_duckdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--profiles-dir", type=Path, required=True)
    parser.add_argument("--duckdb", type=Path, required=True)
    parser.add_argument("--marts", nargs="+", required=True, help="models to build one at a time")
    args = parser.parse_args()
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest

    flags = ["--project-dir", str(args.project_dir), "--profiles-dir", str(args.profiles_dir), "--quiet"]
    parsed = dbtRunner().invoke(["parse", *flags])
    assert parsed.success, parsed.exception
    parsed_manifest = parsed.result
    assert isinstance(parsed_manifest, Manifest)
    reset_duckdb(args.duckdb)
    # A build compiles ephemeral models into the manifest it is given; reusing that one breaks
    # the next build, so each starts from an untouched copy (as in dbt_floor.py).
    start = time.perf_counter()
    built = dbtRunner(manifest=parsed_manifest.deepcopy()).invoke(["build", *flags])
    timings: dict[str, float] = {"baseline": time.perf_counter() - start}
    assert built.success, built.exception
    for mart in args.marts:
        manifest = parsed_manifest.deepcopy()
        start = time.perf_counter()
        result = dbtRunner(manifest=manifest).invoke(["build", *flags, "--select", mart])
        timings[mart] = time.perf_counter() - start
        assert result.success, result.exception
    report(timings)


if __name__ == "__main__":
    main()
