"""Baseline (b): the same assets materialized the way users write it by hand.

Run `dbt parse` (so the manifest the Dagster module reads exists), import the user's
definitions, then `dagster.materialize` with a `DbtCliResource` on a test profile: first
`--select` (one mart and its upstream) on an empty DuckDB, then every asset on another
empty one. Prints the timings.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import TEST_TARGET, load_source_files, report, reset_duckdb


def load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--profiles-dir", type=Path, required=True)
    parser.add_argument("--duckdb", type=Path, required=True)
    parser.add_argument("--definitions", required=True, help="module:attr of the Definitions")
    parser.add_argument("--dbt-assets", required=True, help="module:attr of the @dbt_assets definition")
    parser.add_argument("--select", required=True, help="dbt selection, e.g. +my_mart")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--duckdb-resource", action="append", default=[], help="resource key whose `path` to redirect")
    args = parser.parse_args()
    timings: dict[str, float] = {}

    start = time.perf_counter()
    dbt_flags = ["--project-dir", str(args.project_dir), "--profiles-dir", str(args.profiles_dir), "--quiet"]
    subprocess.run(["dbt", "parse", *dbt_flags], check=True)
    timings["parse"] = time.perf_counter() - start

    start = time.perf_counter()
    sys.path.insert(0, str(args.repo))
    from dagster import materialize
    from dagster_dbt import DbtCliResource, build_dbt_asset_selection

    defs, dbt_assets = load(args.definitions), load(args.dbt_assets)
    timings["import"] = time.perf_counter() - start

    resources = dict(defs.resources or {})
    for key, value in resources.items():
        if isinstance(value, DbtCliResource):
            resources[key] = DbtCliResource(
                project_dir=str(args.project_dir), profiles_dir=str(args.profiles_dir), target=TEST_TARGET
            )
    for key in args.duckdb_resource:
        resources[key] = type(resources[key])(path=str(args.duckdb))
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]

    selected = build_dbt_asset_selection([dbt_assets], dbt_select=args.select)
    graph = defs.resolve_asset_graph()
    counts = {"assets": len(graph.materializable_asset_keys), "selected": len(selected.resolve(graph))}
    selections = {"select": selected, "all": None}
    for name, selection in selections.items():
        reset_duckdb(args.duckdb)
        load_source_files(args.duckdb, args.data_dir)
        start = time.perf_counter()
        result = materialize(assets, selection=selection, resources=resources)
        timings[name] = time.perf_counter() - start
        assert result.success
    report({**counts, **timings})


if __name__ == "__main__":
    main()
