"""Snowflake rows: the plugin on a Snowflake-dialect repo against dbt-snowflake on fakesnow by
hand and dbt's warm in-process runner on the same emulator.

    python benchmarks/snowflake.py --repeat 3        # example_project/jaffle_snowflake

For each repeat, in fresh temporary copies of the repo:

(a) the plugin: one pytest session with a graph test, a `+mart` materialization and the same
    selection again as a later test (the typical test of a suite), per-phase durations from
    `--durations=0`, and the session's wall time;
(b) by hand: what a team writes without the plugin: `dbt parse`, import the definitions,
    `dagster.materialize` of `+mart` with a `DbtCliResource` whose `dbt` runs dbt-snowflake
    under `fakesnow.patch` (a new process per command, as dagster-dbt runs dbt), twice;
(d) the floor: `dbtRunner(manifest=...)` building `+mart` in this process under
    `fakesnow.patch`, warm (parsed once), on fresh files each time.

Prints a Markdown table of medians (and writes it with `--output`). Measurement only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "example_project" / "jaffle_snowflake"
BIN = Path(sys.executable).parent
DURATION_LINE = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+\S+::(\w+)", re.MULTILINE)
PLUGIN_TESTS = """
def test_graph(dbt_asset_graph):
    assert dbt_asset_graph.keys


def test_mart(dbt_assets_materialize):
    assert dbt_assets_materialize(dbt_select="{select}").success


def test_mart_again(dbt_assets_materialize):
    assert dbt_assets_materialize(dbt_select="{select}").success
"""
# A `dbt` that runs dbt-snowflake on fakesnow's files in FOLDER: what a team writes by hand.
DBT_ON_FAKESNOW = """#!{python}
import os
import sys

import fakesnow
from dbt.cli.main import cli

folder = os.environ["BENCH_FAKESNOW_FOLDER"]
with fakesnow.patch(db_path=folder, create_database_on_connect=True):
    import snowflake.connector

    # Snowflake SQL reads across databases (RAW.JAFFLE.ORDERS): attach each one first.
    for name in sorted(os.listdir(folder)):
        if name.endswith(".db"):
            snowflake.connector.connect(database=name[:-3]).close()
    try:
        cli.main(args=sys.argv[1:], prog_name="dbt", standalone_mode=True)
    except SystemExit as exit_:
        sys.exit(exit_.code)
"""
# Untimed, before each run: the sources' tables (data files, else declared columns), loaded
# with the plugin's own loader into the emulator's files, as a team's fixture would load them.
LOAD_SOURCES = """
def load_sources(folder):
    import json
    from pytest_dbt_assets.database import load_sources as load
    from pytest_dbt_assets.warehouse import UserTarget
    from pytest_dbt_assets.warehouse.snowflake import SnowflakeBackend

    backend = SnowflakeBackend(UserTarget("snowflake", "ANALYTICS", "PUBLIC"))
    manifest = json.loads(Path("{project}", "target", "manifest.json").read_text())
    sources = list(manifest["sources"].values())
    main = folder / "ANALYTICS.db"
    attached = {{name: backend.database_file(main, name) for name in backend.further_databases(manifest)}}
    backend.create_databases(main, attached, {{(s["database"], s["schema"]) for s in sources}})
    load(main, sources, provided={{}}, data_dir=Path("{data}"), attached=attached,
         identifier=backend.identifier, column_type=backend.column_type)
"""
BY_HAND = (
    """
import importlib, json, os, sys, time
from pathlib import Path
"""
    + LOAD_SOURCES
    + """

start = time.perf_counter()
module, _, attr = sys.argv[1].partition(":")
sys.path.insert(0, ".")
from dagster import materialize
from dagster_dbt import DbtCliResource, build_dbt_asset_selection

defs = getattr(importlib.import_module(module), attr)
imported = time.perf_counter() - start
resources = {{
    key: DbtCliResource(project_dir="{project}", profiles_dir="{profiles}", target="bench", dbt_executable="{dbt}")
    for key, value in (defs.resources or {{}}).items() if isinstance(value, DbtCliResource)
}}
# The @dbt_assets definitions: dagster-dbt tags their op with the dbt selection.
dbt_defs = [each for each in defs.assets if "dagster_dbt/select" in getattr(getattr(each, "op", None), "tags", {{}})]
timings = {{"import": imported}}
for run in ("first", "again"):
    folder = Path("{folder}") / run
    load_sources(folder)
    os.environ["BENCH_FAKESNOW_FOLDER"] = str(folder)
    selection = build_dbt_asset_selection(dbt_defs, dbt_select="{select}")
    start = time.perf_counter()
    result = materialize(dbt_defs, selection=selection, resources=resources)
    timings[run] = time.perf_counter() - start
    assert result.success
print("BENCH " + json.dumps(timings))
"""
)
FLOOR = (
    """
import json, sys, time
from pathlib import Path
"""
    + LOAD_SOURCES
    + """

import fakesnow
from dbt.cli.main import dbtRunner

flags = ["--project-dir", "{project}", "--profiles-dir", "{profiles}", "--target", "bench", "--quiet"]
parsed = dbtRunner().invoke(["parse", *flags])
assert parsed.success, parsed.exception
timings = {{}}
for run in ("first", "again"):
    folder = Path("{folder}") / run
    load_sources(folder)
    with fakesnow.patch(db_path=folder, create_database_on_connect=True):
        import snowflake.connector

        for name in sorted(p.stem for p in folder.glob("*.db")):
            snowflake.connector.connect(database=name).close()
        start = time.perf_counter()
        result = dbtRunner(manifest=parsed.result.deepcopy()).invoke(["build", *flags, "--select", "{select}"])
        timings[run] = time.perf_counter() - start
    assert result.success, result.exception
print("BENCH " + json.dumps(timings))
"""
)


def ini(repo: Path) -> dict[str, str]:
    return tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def fresh_copy(repo: Path, work: Path) -> Path:
    copy = work / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("target", "__snapshots__", "tests", ".pytest_cache"))
    return copy


def test_profile(project_dir: Path, folder: Path) -> Path:
    """A Snowflake profile with made-up credentials, as a team writes for fakesnow."""
    name = yaml.safe_load((project_dir / "dbt_project.yml").read_text())["profile"]
    output = {"type": "snowflake", "account": "fake", "user": "fake", "password": "fake"}
    output |= {"database": "ANALYTICS", "schema": "PUBLIC", "threads": 4}
    folder.mkdir(parents=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump({name: {"target": "bench", "outputs": {"bench": output}}}))
    return folder


def run_child(code: str, cwd: Path) -> dict[str, float]:
    import json

    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False, env=child_env()
    )
    line = next((each for each in done.stdout.splitlines() if each.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    return dict(json.loads(line.removeprefix("BENCH ")))


def child_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SNOWFLAKE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def plugin(repo: Path, work: Path, select: str) -> dict[str, float]:
    copy = fresh_copy(repo, work)
    (copy / "tests").mkdir()
    (copy / "tests" / "test_bench.py").write_text(textwrap.dedent(PLUGIN_TESTS.format(select=select)))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0", "-q"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-4000:])
    calls = {name: float(seconds) for seconds, when, name in DURATION_LINE.findall(done.stdout) if when == "call"}
    return {"session": wall, "mart": calls["test_mart"], "again": calls["test_mart_again"]}


def by_hand(repo: Path, work: Path, select: str) -> dict[str, float]:
    copy = fresh_copy(repo, work)
    project = copy / ini(repo)["dbt_assets_project_dir"]
    profiles = test_profile(project, work / "profiles")
    dbt = work / "dbt"
    dbt.write_text(DBT_ON_FAKESNOW.format(python=sys.executable))
    dbt.chmod(0o755)
    start = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "dbt"),
            "parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(profiles),
            "--target",
            "bench",
        ],
        check=True,
        capture_output=True,
        env=child_env(),
    )
    parse = time.perf_counter() - start
    data = copy / ini(repo).get("dbt_assets_data_dir", "data")
    code = BY_HAND.format(project=project, profiles=profiles, dbt=dbt, folder=work / "db", select=select, data=data)
    timings = run_child(code.replace("sys.argv[1]", repr(ini(repo)["dbt_assets_definitions"])), copy)
    return {"parse": parse, **timings}


def floor(repo: Path, work: Path, select: str) -> dict[str, float]:
    copy = fresh_copy(repo, work)
    project = copy / ini(repo)["dbt_assets_project_dir"]
    profiles = test_profile(project, work / "profiles")
    data = copy / ini(repo).get("dbt_assets_data_dir", "data")
    code = FLOOR.format(project=project, profiles=profiles, folder=work / "db", select=select, data=data)
    return run_child(code, copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=EXAMPLE)
    parser.add_argument("--select", default="+customers +orders")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for label, measure in (("(a) plugin", plugin), ("(b) by hand", by_hand), ("(d) floor", floor)):
            with tempfile.TemporaryDirectory() as folder:
                for key, value in measure(args.repo, Path(folder), args.select).items():
                    rows.setdefault(f"{label}: {key}", []).append(value)
    lines = [
        f"Snowflake repo {args.repo.name}, `{args.select}`, medians of {args.repeat}",
        "",
        "| row | s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {statistics.median(values):.2f} |" for name, values in rows.items()]
    mart, floor_again = statistics.median(rows["(a) plugin: again"]), statistics.median(rows["(d) floor: again"])
    lines += ["", f"later call / warm floor: {mart / floor_again:.2f}x"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
