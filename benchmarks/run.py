"""Time the plugin against hand-written Dagster, the dbt CLI and dbt's warm in-process runner.

    python benchmarks/run.py --sizes 5 100 --repeat 3

For each generated repo size (and example_project), every repeat works in fresh temporary
folders, one per measurement, and times:

(a) the plugin: one pytest session (graph test, `+mart` test, all-assets test, `+mart`
    again), per-phase durations from `--durations=0`, then a second session in the same
    repo copy (warm caches); (a') the same with `--dbt-assets-runner=subprocess`;
(b) the same assets by hand: `dbt parse`, import the definitions, `dagster.materialize`
    with a `DbtCliResource` (by_hand.py);
(c) the dbt CLI: `dbt --version`, `dbt parse`, `dbt build --select ...`, `dbt build`;
(d) the floor: warm `dbtRunner(manifest=...)` builds (dbt_floor.py);
(e) a pytest session running the graph test only, with a warm manifest cache;
(g) dagster-dbt alone: a process importing the definitions from a parsed manifest and
    resolving the asset graph (defs_only.py), the baseline of (e);
(h) the same as a pytest test without the plugin (`-p no:dbt_assets`), in (e)'s repo: what
    pytest itself adds to (g);
(f) peak RSS of (a), (a') and (b): the largest process of each child's tree, from `os.wait4`.

It prints a Markdown table of medians and writes it, with the machine, to RESULTS.md.
Nothing here asserts on time: this is measurement.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from _common import load_source_files, read_report, reset_duckdb, write_test_profile
from generate_project import BENCH_SELECT, DAGSTER_PACKAGE, DBT_DIR, PROFILE, generate, write_tests

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "example_project"
BIN = Path(sys.executable).parent
PACKAGES = ("pytest-dbt-assets", "dbt-core", "dbt-duckdb", "dagster", "dagster-dbt", "duckdb", "pytest")
DURATION_LINE = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+\S+::(\w+)", re.MULTILINE)
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0"]
SUBPROCESS_RUNNER = "--dbt-assets-runner=subprocess"
# (h): defs_only.py's work as a test, in a pytest session without the plugin.
GRAPH_BY_HAND_PY = """\
import importlib


def test_graph_by_hand():
    module, _, attr = "{definitions}".partition(":")
    defs = getattr(importlib.import_module(module), attr)
    assert defs.resolve_asset_graph().get_all_asset_keys()
"""

# (key, label, unit); "x" rows are ratios "numerator/denominator" of the medians.
ROWS = [
    ("assets", "assets in the graph", "n"),
    ("selected", "assets selected by the mart selection", "n"),
    ("a_setup", "(a) plugin: test_graph setup: session fixtures (the start-up parse ran before collection)", "s"),
    ("a_select", "(a) plugin: materialize selection (test call)", "s"),
    ("a_all", "(a) plugin: materialize all (test call)", "s"),
    ("a_again", "(a) plugin: materialize selection again, a later test (test call)", "s"),
    ("a_fixtures", "(a) plugin: other fixture setup + teardown", "s"),
    ("a_wall", "(a) plugin: pytest wall, 4 tests", "s"),
    ("w_setup", "(a) plugin, second session in the same repo: test_graph setup", "s"),
    ("w_select", "(a) plugin, second session in the same repo: materialize selection", "s"),
    ("w_all", "(a) plugin, second session in the same repo: materialize all", "s"),
    ("w_again", "(a) plugin, second session in the same repo: materialize selection again", "s"),
    ("w_wall", "(a) plugin, second session in the same repo: pytest wall", "s"),
    ("s_select", f"(a') plugin, `{SUBPROCESS_RUNNER}`: materialize selection", "s"),
    ("s_all", f"(a') plugin, `{SUBPROCESS_RUNNER}`: materialize all", "s"),
    ("s_wall", f"(a') plugin, `{SUBPROCESS_RUNNER}`: pytest wall", "s"),
    ("b_setup", "(b) by hand: `dbt parse` CLI + import defs", "s"),
    ("b_select", "(b) by hand: materialize selection", "s"),
    ("b_all", "(b) by hand: materialize all", "s"),
    ("b_wall", "(b) by hand: script wall", "s"),
    ("c_version", "(c) CLI: `dbt --version`", "s"),
    ("c_parse", "(c) CLI: `dbt parse`", "s"),
    ("c_select", "(c) CLI: `dbt build --select ...`", "s"),
    ("c_all", "(c) CLI: `dbt build`", "s"),
    ("d_select", "(d) warm dbtRunner: build selection", "s"),
    ("d_all", "(d) warm dbtRunner: build all", "s"),
    ("e_wall", "(e) pytest wall, graph test only, warm manifest cache", "s"),
    ("g_wall", "(g) dagster-dbt alone: python, imports, definitions from the manifest, asset graph", "s"),
    ("h_wall", "(h) the same in a pytest test, without the plugin (`-p no:dbt_assets`)", "s"),
    ("a_rss", "(f) peak RSS, plugin pytest session", "MB"),
    ("s_rss", "(f) peak RSS, plugin pytest session, subprocess runner", "MB"),
    ("b_rss", "(f) peak RSS, by-hand script", "MB"),
    ("a_select/s_select", "ratio a/a', selection", "x"),
    ("a_all/s_all", "ratio a/a', all", "x"),
    ("a_select/b_select", "ratio a/b, selection", "x"),
    ("a_again/b_select", "ratio a/b, selection again (later test)", "x"),
    ("a_all/b_all", "ratio a/b, all", "x"),
    ("s_select/b_select", "ratio a'/b, selection", "x"),
    ("s_all/b_all", "ratio a'/b, all", "x"),
    ("a_wall/b_wall", "ratio a/b, wall", "x"),
    ("a_select/c_select", "ratio a/c, selection", "x"),
    ("a_all/c_all", "ratio a/c, all", "x"),
    ("a_select/d_select", "ratio a/d, selection", "x"),
    ("a_again/d_select", "ratio a/d, selection again (later test)", "x"),
    ("a_all/d_all", "ratio a/d, all", "x"),
    ("a_rss/b_rss", "ratio a/b, peak RSS", "x"),
    ("e_wall/g_wall", "ratio e/g, graph-only session", "x"),
    ("e_wall/h_wall", "ratio e/h, graph-only session against pytest by hand", "x"),
]


@dataclass(frozen=True)
class Target:
    """A user repo to benchmark, and where its pieces are."""

    name: str
    write_repo: Callable[[Path], None]
    profile: str
    dbt_dir: str
    definitions: str
    dbt_assets: str
    select: str
    data_dir: str | None = None
    duckdb_resources: tuple[str, ...] = ()


def generated_target(n_models: int) -> Target:
    def write_repo(repo: Path) -> None:
        generate(n_models, repo)

    return Target(
        name=f"{n_models} models",
        write_repo=write_repo,
        profile=PROFILE,
        dbt_dir=DBT_DIR,
        definitions=f"{DAGSTER_PACKAGE}.definitions:defs",
        dbt_assets=f"{DAGSTER_PACKAGE}.definitions:bench_dbt_assets",
        select=BENCH_SELECT,
    )


def example_target() -> Target:
    # orders carries a relationships test to customers: dbt runs it with either mart, so
    # the smallest selection that passes holds both (as in example_project's own tests).
    select = "+customers +orders"

    def write_repo(repo: Path) -> None:
        skipped = shutil.ignore_patterns("target", "logs", "__pycache__", ".pytest_cache", "*.duckdb*", "tests")
        shutil.copytree(EXAMPLE, repo, ignore=skipped)
        (repo / "tests").mkdir()
        shutil.copy(EXAMPLE / "tests" / "conftest.py", repo / "tests")
        write_tests(repo, select, "jaffle/marts/customers")

    return Target(
        name="example_project",
        write_repo=write_repo,
        profile="jaffle_shop",
        dbt_dir="jaffle_dbt",
        definitions="jaffle_dagster.definitions:defs",
        dbt_assets="jaffle_dagster.assets:jaffle_dbt_assets",
        select=select,
        data_dir="data",
        duckdb_resources=("warehouse",),
    )


@dataclass(frozen=True)
class Child:
    wall: float
    peak_mb: float
    output: str
    cpu: float = 0.0  # user + system seconds of the process and every process it waited for
    exit: int = 0


def child_env() -> dict[str, str]:
    """This interpreter's tools first on PATH; no DBT_/DAGSTER_ redirections; no telemetry.

    PYTHONDONTWRITEBYTECODE is dropped as a user's shell does not set it: with it, pytest
    rewrites the test and plugin modules afresh in every run, which no user pays.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DBT_", "DAGSTER_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


def run_child(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> Child:
    """Run a process to completion (in ``env``, :func:`child_env` by default); its wall time,
    the peak RSS of its largest process, the CPU time it and the processes it waited for used,
    and its exit code (with ``check``, one but 0 raises)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            args, cwd=cwd, env=child_env() if env is None else env, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if check and process.returncode != 0:
        command = " ".join(str(arg) for arg in args)
        raise RuntimeError(f"`{command}` in {cwd} exited with {process.returncode}:\n{output[-6000:]}")
    kilobytes = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return Child(wall, kilobytes / 1024, output, usage.ru_utime + usage.ru_stime, process.returncode)


def durations_by_phase(output: str) -> dict[tuple[str, str], float]:
    """(test function name, phase) -> seconds, from `--durations=0`."""
    return {(test, phase): float(seconds) for seconds, phase, test in DURATION_LINE.findall(output)}


def fresh_repo(target: Target, folder: Path) -> Path:
    repo = folder / "repo"
    target.write_repo(repo)
    return repo


def run_suite(repo: Path, *options: str) -> tuple[Child, dict[tuple[str, str], float]]:
    child = run_child([*PYTEST, f"--basetemp={repo.parent / 'tmp'}", *options], repo)
    return child, durations_by_phase(child.output)


def measure_plugin(target: Target, folder: Path) -> dict[str, float]:
    """(a) the suite in one pytest session, then again in the same repo (warm caches);
    (a') the same with the subprocess runner; (e) a session with the graph test only; (h) its
    repo's graph resolved by hand in a pytest session without the plugin."""
    repo = fresh_repo(target, folder / "default")
    child, phases = run_suite(repo)
    warm, warm_phases = run_suite(repo)
    sub, sub_phases = run_suite(fresh_repo(target, folder / "subprocess"), SUBPROCESS_RUNNER)
    graph_repo = fresh_repo(target, folder / "graph")
    run_suite(graph_repo, "tests/test_graph.py")  # fills the manifest cache
    graph_only, _ = run_suite(graph_repo, "tests/test_graph.py")
    by_hand = graph_repo / "tests" / "test_graph_by_hand.py"
    by_hand.write_text(GRAPH_BY_HAND_PY.format(definitions=target.definitions))
    no_plugin = ("-p", "no:dbt_assets", "-W", "ignore::pytest.PytestConfigWarning")  # its ini keys are unknown
    graph_by_hand, _ = run_suite(graph_repo, *no_plugin, str(by_hand.relative_to(graph_repo)))
    session_setup = phases["test_graph", "setup"]
    return {
        "a_setup": session_setup,
        "a_select": phases["test_materialize_mart", "call"],
        "a_all": phases["test_materialize_all", "call"],
        "a_again": phases["test_materialize_mart_again", "call"],
        "a_fixtures": sum(seconds for (_, phase), seconds in phases.items() if phase != "call") - session_setup,
        "a_wall": child.wall,
        "a_rss": child.peak_mb,
        "w_setup": warm_phases["test_graph", "setup"],
        "w_select": warm_phases["test_materialize_mart", "call"],
        "w_all": warm_phases["test_materialize_all", "call"],
        "w_again": warm_phases["test_materialize_mart_again", "call"],
        "w_wall": warm.wall,
        "s_select": sub_phases["test_materialize_mart", "call"],
        "s_all": sub_phases["test_materialize_all", "call"],
        "s_wall": sub.wall,
        "s_rss": sub.peak_mb,
        "e_wall": graph_only.wall,
        "h_wall": graph_by_hand.wall,
    }


def script_args(target: Target, folder: Path, repo: Path) -> list[str | Path]:
    """Arguments by_hand.py and dbt_floor.py share, with a fresh test profile in ``folder``."""
    duckdb_path = folder / "bench.duckdb"
    write_test_profile(folder / "profiles", target.profile, duckdb_path)
    args: list[str | Path] = [
        "--project-dir",
        repo / target.dbt_dir,
        "--profiles-dir",
        folder / "profiles",
        "--duckdb",
        duckdb_path,
        "--select",
        target.select,
    ]
    return args + ["--data-dir", repo / target.data_dir] if target.data_dir else args


def measure_by_hand(target: Target, folder: Path) -> dict[str, float]:
    """(b) by_hand.py: parse, import and materialize the way users write it."""
    repo = fresh_repo(target, folder)
    args = [
        sys.executable,
        HERE / "by_hand.py",
        *script_args(target, folder, repo),
        "--repo",
        repo,
        "--definitions",
        target.definitions,
        "--dbt-assets",
        target.dbt_assets,
    ]
    for key in target.duckdb_resources:
        args += ["--duckdb-resource", key]
    child = run_child(args, repo)
    report = read_report(child.output)
    # (g) in the same repo, now that `dbt parse` has written target/manifest.json.
    defs_only = run_child(
        [sys.executable, HERE / "defs_only.py", "--repo", repo, "--definitions", target.definitions], repo
    )
    return {
        "g_wall": defs_only.wall,
        "assets": report["assets"],
        "selected": report["selected"],
        "b_setup": report["parse"] + report["import"],
        "b_select": report["select"],
        "b_all": report["all"],
        "b_wall": child.wall,
        "b_rss": child.peak_mb,
    }


def measure_cli(target: Target, folder: Path) -> dict[str, float]:
    """(c) one dbt process per command, each build on an empty DuckDB."""
    repo = fresh_repo(target, folder)
    duckdb_path = folder / "bench.duckdb"
    write_test_profile(folder / "profiles", target.profile, duckdb_path)
    dbt = [BIN / "dbt"]
    flags = ["--project-dir", repo / target.dbt_dir, "--profiles-dir", folder / "profiles", "--quiet"]
    values = {
        "c_version": run_child([*dbt, "--version"], repo).wall,
        "c_parse": run_child([*dbt, "parse", *flags], repo).wall,
    }
    for key, select in (("c_select", ["--select", *target.select.split()]), ("c_all", [])):
        reset_duckdb(duckdb_path)
        load_source_files(duckdb_path, repo / target.data_dir if target.data_dir else None)
        values[key] = run_child([*dbt, "build", *flags, *select], repo).wall
    return values


def measure_floor(target: Target, folder: Path) -> dict[str, float]:
    """(d) dbt_floor.py: warm in-process builds from a manifest loaded once."""
    repo = fresh_repo(target, folder)
    report = read_report(
        run_child([sys.executable, HERE / "dbt_floor.py", *script_args(target, folder, repo)], repo).output
    )
    return {"d_select": report["select"], "d_all": report["all"]}


def measure(target: Target, workdir: Path) -> dict[str, float]:
    """One repeat of every measurement, each in its own fresh copy of the repo."""
    values: dict[str, float] = {}
    for name, measure_one in (
        ("plugin", measure_plugin),
        ("by_hand", measure_by_hand),
        ("cli", measure_cli),
        ("floor", measure_floor),
    ):
        values.update(measure_one(target, workdir / name))
    touched = [path for repo in workdir.glob("**/repo") for path in repo.rglob("*.duckdb*")]
    if touched:
        raise RuntimeError(f"a DuckDB file appeared inside a repo copy (the user's prod?): {touched}")
    return values


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def cell(values: dict[str, float], key: str, unit: str) -> str:
    if unit == "x":
        numerator, denominator = key.split("/")
        return f"{values[numerator] / values[denominator]:.2f}x"
    if unit == "n":
        return str(int(values[key]))
    return f"{values[key]:.0f}" if unit == "MB" else f"{values[key]:.2f}"


def render_table(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| measurement | unit | " + " | ".join(results) + " |",
        "|---|---|" + "---:|" * len(results),
    ]
    for key, label, unit in ROWS:
        cells = [cell(values, key, unit) for values in results.values()]
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def plugin_revision() -> str:
    """The git commit of the plugin under test, and whether its code has uncommitted changes."""
    try:
        # --no-optional-locks: `status` must not refresh (write) the index of a repo others use.
        git = ["git", "--no-optional-locks", "-C", str(HERE.parent)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", "pytest_dbt_assets"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return commit.stdout.strip() + (" with uncommitted changes" if changes.stdout.strip() else "")


def describe_machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    packages = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu_model()}), {memory:.1f} GiB RAM, "
        f"Python {platform.python_version()}; {packages}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[5, 100], help="generated repo sizes, in models")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-example", action="store_true", help="skip example_project")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()

    revision = plugin_revision()
    targets = [generated_target(n) for n in args.sizes]
    if not args.no_example:
        targets.append(example_target())
    results: dict[str, dict[str, float]] = {}
    for target in targets:
        runs = []
        for index in range(args.repeat):
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="dbt-assets-bench-") as workdir:
                runs.append(measure(target, Path(workdir)))
            print(
                f"{target.name}: repeat {index + 1}/{args.repeat} in {time.perf_counter() - start:.0f}s",
                file=sys.stderr,
                flush=True,
            )
        results[target.name] = medians(runs)

    table = render_table(results)
    final_revision = plugin_revision()
    if final_revision != revision:
        revision = f"{revision} at the start, {final_revision} at the end"
    command = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    document = (
        f"# Benchmark results\n\n`{command}`, {date}: medians of {args.repeat} runs.\n\n"
        f"Plugin at {revision}. Machine: {describe_machine()}.\n\n{table}\n\n"
        "See README.md for what each row measures. Timings are wall-clock and vary with load.\n"
    )
    args.output.write_text(document)
    print(table)


if __name__ == "__main__":
    main()
