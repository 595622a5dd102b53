"""Helpers shared by the benchmark runner and its child scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

RESULT_PREFIX = "BENCH_RESULT "
TEST_TARGET = "bench"


def write_test_profile(profiles_dir: Path, profile: str, duckdb_path: Path) -> None:
    """A profiles.yml whose only target is ``duckdb_path``, as a user writes for tests."""
    profiles_dir.mkdir(parents=True, exist_ok=True)
    outputs = {TEST_TARGET: {"type": "duckdb", "path": str(duckdb_path), "threads": 4}}
    content = {profile: {"target": TEST_TARGET, "outputs": outputs}}
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(content))


def load_source_files(duckdb_path: Path, data_dir: Path | None) -> None:
    """Create ``<source>.<table>`` from each ``<data_dir>/<source>/<table>.csv``."""
    if data_dir is None:
        return
    import duckdb

    with duckdb.connect(str(duckdb_path)) as con:
        for path in sorted(data_dir.glob("*/*.csv")):
            schema, table = path.parent.name, path.stem
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(f'create or replace table "{schema}"."{table}" as select * from read_csv(\'{path}\')')


def reset_duckdb(duckdb_path: Path) -> None:
    for path in (duckdb_path, duckdb_path.with_name(duckdb_path.name + ".wal")):
        path.unlink(missing_ok=True)


def report(values: dict[str, Any]) -> None:
    """Hand timings back to the runner on one tagged stdout line."""
    print(RESULT_PREFIX + json.dumps(values), flush=True)


def read_report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError("child script printed no result line:\n" + output[-4000:])
