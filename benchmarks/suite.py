"""Time a whole realistic test suite: the plugin, the plugin on a session baseline, and by hand.

    python benchmarks/suite.py --models 500 --tests 20 --output /tmp/suite-500.md
    python benchmarks/suite.py --models 40 --tests 3 --variants plugin by_hand --workers 0

On the generated N-model repo (generate_project.py), one suite: a graph snapshot test and one
materialization test per mart (mart_000, mart_001, ...), each asserting the mart's row count.
Three ways to write it, each a whole `pytest` run in a fresh copy of the repo, at each `-n`:

  plugin    `dbt_assets_materialize(dbt_select="+mart_XXX")`, what users write today;
  baseline  `dbt_assets_materialize(dbt_select="mart_XXX", baseline=True)`: the test starts
            from a copy of the session baseline and builds its mart alone;
  baseline_kept  the same suite run a second time in the same copy (the first run is not
            timed): the baseline template, kept under target/, is reused, as on a developer's
            re-run or a CI job that caches target/;
  by_hand   the same tests with dagster-dbt and no plugin (`-p no:dbt_assets`): a conftest
            parses with a test profile and imports the definitions once per worker, each test
            runs `dagster.materialize` with a `DbtCliResource` on an emptied DuckDB, then
            counts the mart's rows.

Per run: pytest's wall time; the peak of the summed RSS (and PSS) of pytest and all its
descendants, sampled from /proc every 0.2 s; the largest single process (`os.wait4`); each
test's phases from `--durations=0`. A floor (mart_floor.py): warm `dbtRunner` building each
mart alone on a database where the whole project is built. It prints a Markdown table of the
runs and one of the ratios against issue 14's targets, and writes both, with the machine, to
`--output`. Nothing here asserts on time: this is measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import read_report, write_test_profile
from generate_project import DAGSTER_PACKAGE, DBT_DIR, PROFILE, SEED_ROWS, generate
from run import child_env, describe_machine, plugin_revision, run_child

HERE = Path(__file__).resolve().parent
VARIANTS = ("plugin", "baseline", "baseline_kept", "by_hand")
VARIANT_LABELS = {
    "plugin": "plugin `+mart`",
    "baseline": "plugin, baseline",
    "baseline_kept": "plugin, baseline kept from a first run",
    "by_hand": "by hand",
}
BASELINE_VARIANTS = ("baseline", "baseline_kept")
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0"]
# The plugin as if it were not installed (its pytest11 entry point is `dbt_assets`).
WITHOUT_PLUGIN = ["-p", "no:dbt_assets"]
DURATION_LINE = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)\s*$", re.MULTILINE)
MART_TEST = re.compile(r"::test_mart\[(\w+)\]$")
SAMPLE_SECONDS = 0.2
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
PR_SET_CHILD_SUBREAPER = 36
# Files that a run leaves in a repo and a fresh checkout would not have.
NOT_COMMITTED = shutil.ignore_patterns("target", "logs", "__pycache__", ".pytest_cache", "*.duckdb*")

PLUGIN_GRAPH_TEST = """\
def test_graph(dbt_asset_graph, dbt_assets_snapshot):
    assert dbt_asset_graph == dbt_assets_snapshot
"""

PLUGIN_MARTS_TEST = """\
import pytest

MARTS = {marts!r}


@pytest.mark.parametrize("mart", MARTS)
def test_mart(dbt_assets_materialize, mart):
    result = dbt_assets_materialize(dbt_select=f"+{{mart}}")
    assert result.row_counts[mart] == {rows}
"""

BASELINE_MARTS_TEST = """\
import pytest

MARTS = {marts!r}


@pytest.mark.parametrize("mart", MARTS)
def test_mart(dbt_assets_materialize, mart):
    result = dbt_assets_materialize(dbt_select=mart, baseline=True)
    assert mart in result.materialized
    assert result.row_counts[mart] == {rows}
"""

BY_HAND_PYPROJECT = """\
[tool.pytest.ini_options]
pythonpath = ["."]
"""

BY_HAND_CONFTEST = '''\
"""Fixtures for testing the dbt assets with dagster-dbt alone, safe under pytest-xdist."""

import os
import shutil
from pathlib import Path

import pytest
import yaml
from dagster_dbt import DbtCliResource

DBT_DIR = Path(__file__).resolve().parent.parent / "{dbt_dir}"


@pytest.fixture(scope="session")
def duckdb_path(tmp_path_factory):
    """The test database: one file per xdist worker (each worker has its own basetemp)."""
    return tmp_path_factory.getbasetemp() / "test.duckdb"


@pytest.fixture(scope="session")
def dbt(tmp_path_factory, duckdb_path):
    """dbt on a test profile (never the production one), parsed once per worker."""
    base = tmp_path_factory.getbasetemp()
    target = {{"type": "duckdb", "path": str(duckdb_path), "threads": 4}}
    profiles = {{"{profile}": {{"target": "test", "outputs": {{"test": target}}}}}}
    (base / "profiles.yml").write_text(yaml.safe_dump(profiles))
    resource = DbtCliResource(project_dir=os.fspath(DBT_DIR), profiles_dir=os.fspath(base), target="test")
    target_path = base / "dbt_target"
    with pytest.MonkeyPatch.context() as env:
        # dbt and dagster-dbt both read DBT_TARGET_PATH: each worker keeps its artifacts apart,
        # and every build starts from this parse (dagster-dbt copies partial_parse.msgpack).
        env.setenv("DBT_TARGET_PATH", os.fspath(target_path))
        resource.cli(["parse", "--quiet"], target_path=target_path).wait()
        yield resource


@pytest.fixture(scope="session")
def bench(dbt, tmp_path_factory):
    """The Dagster definitions module, which reads target/manifest.json when imported."""
    manifest = DBT_DIR / "target" / "manifest.json"
    manifest.parent.mkdir(exist_ok=True)
    copy = manifest.with_name(f"manifest.{{os.getpid()}}.json")
    shutil.copy(tmp_path_factory.getbasetemp() / "dbt_target" / "manifest.json", copy)
    os.replace(copy, manifest)  # atomic: another worker may be importing it right now
    from {package} import definitions

    return definitions


@pytest.fixture
def empty_duckdb(duckdb_path):
    """A fresh database for each test."""
    for path in (duckdb_path, duckdb_path.with_name(duckdb_path.name + ".wal")):
        path.unlink(missing_ok=True)
    return duckdb_path
'''

BY_HAND_GRAPH_TEST = """\
def test_graph(bench, snapshot):
    graph = bench.defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }
    assert parents == snapshot
"""

BY_HAND_MARTS_TEST = """\
import duckdb
import pytest
from dagster import materialize
from dagster_dbt import build_dbt_asset_selection

MARTS = {marts!r}


@pytest.mark.parametrize("mart", MARTS)
def test_mart(bench, dbt, empty_duckdb, mart):
    assets = bench.bench_dbt_assets
    selection = build_dbt_asset_selection([assets], dbt_select=f"+{{mart}}")
    result = materialize([assets], selection=selection, resources={{"dbt": dbt}})
    assert result.success
    with duckdb.connect(str(empty_duckdb), read_only=True) as connection:
        assert connection.execute(f"select count(*) from {{mart}}").fetchone() == ({rows},)
"""


@dataclass
class Run:
    """One whole pytest run of a variant at one `-n`."""

    variant: str
    workers: int
    exit_code: int
    wall: float
    tree_rss_mb: float
    tree_pss_mb: float
    largest_mb: float
    load_before: float
    load_after: float
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def mart_calls(self) -> dict[str, float]:
        """mart -> its test's call duration; none for a run that failed (they would not compare)."""
        calls: dict[str, float] = {}
        if not self.passed:
            return calls
        for node, phases in self.phases.items():
            match = MART_TEST.search(node)
            if match and "call" in phases:
                calls[match.group(1)] = phases["call"]
        return calls

    def mart_setups(self) -> list[float]:
        if not self.passed:
            return []
        return [phases.get("setup", 0.0) for node, phases in self.phases.items() if MART_TEST.search(node)]

    def graph_test(self) -> float | None:
        for node, phases in self.phases.items():
            if node.endswith("::test_graph"):
                return phases.get("setup", 0.0) + phases.get("call", 0.0)
        return None


# ---------------------------------------------------------------------------- the process tree


def become_subreaper() -> bool:
    """Adopt orphaned descendants (a daemonized worker), so the tree sampler still sees them."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, from the parent ids in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; zeros once it is gone."""
    try:
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
                break
    except (OSError, IndexError, ValueError):
        return 0, 0
    return rss_pages * PAGE_BYTES // 1024, pss


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


class TreeSampler(threading.Thread):
    """The peak of the summed RSS and PSS of every descendant of this process."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0

    def sample(self) -> None:
        totals = [memory_kb(pid) for pid in descendants(os.getpid())]
        self.peak_rss_kb = max(self.peak_rss_kb, sum(rss for rss, _ in totals))
        self.peak_pss_kb = max(self.peak_pss_kb, sum(pss for _, pss in totals))

    def run(self) -> None:
        while True:
            self.sample()
            if self.stopped.wait(SAMPLE_SECONDS):
                return


def reap_orphans() -> None:
    """Collect adopted descendants that exited (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------------------- the repos


def copy_repo(source: Path, destination: Path) -> Path:
    """A fresh checkout: the committed files only (no target/, logs, caches or databases)."""
    shutil.copytree(source, destination, ignore=NOT_COMMITTED)
    return destination


def write_suite(repo: Path, variant: str, marts: list[str]) -> None:
    tests = repo / "tests"
    for old in tests.glob("test_*.py"):
        old.unlink()
    if variant == "by_hand":
        (repo / "pyproject.toml").write_text(BY_HAND_PYPROJECT)
        conftest = BY_HAND_CONFTEST.format(dbt_dir=DBT_DIR, profile=PROFILE, package=DAGSTER_PACKAGE)
        (tests / "conftest.py").write_text(conftest)
        (tests / "test_graph.py").write_text(BY_HAND_GRAPH_TEST)
        (tests / "test_marts.py").write_text(BY_HAND_MARTS_TEST.format(marts=marts, rows=SEED_ROWS))
        return
    (tests / "test_graph.py").write_text(PLUGIN_GRAPH_TEST)
    marts_test = BASELINE_MARTS_TEST if variant in BASELINE_VARIANTS else PLUGIN_MARTS_TEST
    (tests / "test_marts.py").write_text(marts_test.format(marts=marts, rows=SEED_ROWS))


def pytest_options(variant: str) -> list[str]:
    return WITHOUT_PLUGIN if variant == "by_hand" else []


def prepare_template(generated: Path, folder: Path, variant: str, marts: list[str]) -> Path:
    """The repo of one variant as its team commits it: the suite and the graph snapshot,
    written once by `--snapshot-update` on the graph test (not timed)."""
    repo = copy_repo(generated, folder / "repo")
    write_suite(repo, variant, marts)
    command = [*PYTEST, f"--basetemp={folder / 'tmp'}", *pytest_options(variant), "tests/test_graph.py"]
    run_child([*command, "--snapshot-update"], repo)
    check_no_database(repo)  # copies leave databases out, so look here
    if not list((repo / "tests" / "__snapshots__").rglob("*.*")):
        raise RuntimeError(f"`--snapshot-update` wrote no graph snapshot in {repo}")
    return repo


# ---------------------------------------------------------------------------- measuring


def durations(output: str) -> dict[str, dict[str, float]]:
    """node id -> phase -> seconds, from `--durations=0`."""
    phases: dict[str, dict[str, float]] = {}
    for seconds, phase, node in DURATION_LINE.findall(output):
        phases.setdefault(node, {})[phase] = float(seconds)
    return phases


def wait_for_leftovers(grace: float = 5.0) -> list[str]:
    """Descendants still alive ``grace`` seconds after pytest exited (a helper such as
    multiprocessing's resource tracker exits a moment after its parent), reaping the others."""
    deadline = time.monotonic() + grace
    while True:
        reap_orphans()
        alive = descendants(os.getpid())
        if not alive or time.monotonic() > deadline:
            return [f"{pid}: {command_line(pid)}" for pid in alive]
        time.sleep(0.2)


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_pytest(repo: Path, variant: str, workers: int) -> tuple[Run, str]:
    """One whole pytest run; its figures and its output."""
    command = [*PYTEST, f"--basetemp={repo.parent / 'tmp'}", "-n", str(workers), *pytest_options(variant)]
    stale = wait_for_leftovers()
    if stale:
        print(f"note: processes of an earlier step still run and count in this run's memory: {stale}", file=sys.stderr)
    load_before = os.getloadavg()[0]
    sampler = TreeSampler()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        # A session of its own, so that an interrupted benchmark stops this run's whole tree.
        process = subprocess.Popen(
            command, cwd=repo, env=child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        sampler.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
        finally:
            sampler.stopped.set()
            sampler.join()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    leftovers = wait_for_leftovers()
    largest_kb = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    run = Run(
        variant=variant,
        workers=workers,
        exit_code=process.returncode,
        wall=wall,
        tree_rss_mb=sampler.peak_rss_kb / 1024,
        tree_pss_mb=sampler.peak_pss_kb / 1024,
        largest_mb=largest_kb / 1024,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        phases=durations(output),
        leftovers=leftovers,
    )
    return run, output


def check_no_database(repo: Path) -> None:
    """No DuckDB file in the repo but the plugin's own: the session baseline's template, which
    it keeps in its cache under ``<dbt project>/target/dbt_assets_cache/``."""
    cache = repo / DBT_DIR / "target" / "dbt_assets_cache"
    touched = [path for path in repo.rglob("*.duckdb*") if not path.is_relative_to(cache)]
    if touched:
        raise RuntimeError(f"a DuckDB file appeared inside a repo copy (the user's prod?): {touched}")


def measure_floor(generated: Path, folder: Path, marts: list[str]) -> dict[str, float]:
    """mart_floor.py in a fresh copy, on a test profile in ``folder``."""
    repo = copy_repo(generated, folder / "repo")
    duckdb_path = folder / "floor.duckdb"
    write_test_profile(folder / "profiles", PROFILE, duckdb_path)
    args: list[str | Path] = [sys.executable, HERE / "mart_floor.py", "--project-dir", repo / DBT_DIR]
    args += ["--profiles-dir", folder / "profiles", "--duckdb", duckdb_path, "--marts", *marts]
    report = read_report(run_child(args, repo).output)
    check_no_database(repo)
    return {key: float(value) for key, value in report.items()}


# ---------------------------------------------------------------------------- the tables


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def column(run: Run) -> str:
    return f"{VARIANT_LABELS[run.variant]}, -n {run.workers}"


RUN_ROWS: list[tuple[str, Callable[[Run], str]]] = [
    ("outcome", lambda run: "passed" if run.passed else f"**failed** (exit {run.exit_code})"),
    ("pytest wall, s", lambda run: fmt(run.wall)),
    ("peak memory, summed RSS of pytest and all descendants, MB", lambda run: fmt(run.tree_rss_mb, 0)),
    ("peak memory, summed PSS of the same tree, MB", lambda run: fmt(run.tree_pss_mb, 0)),
    ("largest single process (`os.wait4` ru_maxrss), MB", lambda run: fmt(run.largest_mb, 0)),
    ("graph test, setup + call, s", lambda run: fmt(run.graph_test())),
    ("one-mart test call, median over the marts, s", lambda run: fmt(median(list(run.mart_calls().values())))),
    ("one-mart test call, fastest, s", lambda run: fmt(min(run.mart_calls().values(), default=None))),
    ("one-mart test call, slowest, s", lambda run: fmt(max(run.mart_calls().values(), default=None))),
    ("one-mart tests, slowest setup, s", lambda run: fmt(max(run.mart_setups(), default=None))),
    ("all mart test calls, sum, s", lambda run: fmt(sum(run.mart_calls().values()) if run.mart_calls() else None)),
    ("load average (1 min) before / after", lambda run: f"{run.load_before:.1f} / {run.load_after:.1f}"),
]


def render_runs(runs: list[Run], floor: dict[str, float] | None, marts: list[str]) -> str:
    lines = ["| measurement | " + " | ".join(column(run) for run in runs) + " |", "|---|" + "---:|" * len(runs)]
    for label, value in RUN_ROWS:
        lines.append(f"| {label} | " + " | ".join(value(run) for run in runs) + " |")
    if floor is not None:
        per_mart = [floor[mart] for mart in marts if mart in floor]
        lines.append("")
        lines.append(
            f"Floor (mart_floor.py): warm `dbtRunner` building one mart alone on a database holding the "
            f"whole project (built once in {floor['baseline']:.2f} s): median {fmt(median(per_mart))} s, "
            f"fastest {fmt(min(per_mart, default=None))} s, slowest {fmt(max(per_mart, default=None))} s "
            f"over {len(per_mart)} marts."
        )
    return "\n".join(lines)


def find(runs: list[Run], variant: str, workers: int) -> Run | None:
    for run in runs:
        if run.variant == variant and run.workers == workers and run.passed:
            return run
    return None


def per_mart_ratio(numerator: dict[str, float], denominator: dict[str, float]) -> float | None:
    """The median over the marts both hold of numerator[mart] / denominator[mart]."""
    return median([numerator[m] / denominator[m] for m in numerator if m in denominator and denominator[m] > 0])


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def render_targets(runs: list[Run], floor: dict[str, float] | None, workers: list[int]) -> str:
    """Ratios against issue 14's targets ("n/a": a run it needs failed or was not asked for)."""
    rows: list[tuple[str, float | None, str, Callable[[float], bool] | None]] = []
    for n in workers:
        hand = find(runs, "by_hand", n)
        for variant in (*BASELINE_VARIANTS, "plugin"):
            run = find(runs, variant, n)
            label = VARIANT_LABELS[variant]
            # The targets are the baseline's; the plugin's `+mart` ratios are there to compare.
            target, check = (">= 20x", at_least(20)) if variant in BASELINE_VARIANTS else ("", None)
            mart_ratio = per_mart_ratio(hand.mart_calls(), run.mart_calls()) if hand and run else None
            rows.append((f"-n {n}: one-mart test, by hand / {label}, same mart", mart_ratio, target, check))
            if variant in BASELINE_VARIANTS:
                floor_ratio = per_mart_ratio(run.mart_calls(), floor) if run and floor else None
                rows.append(
                    (f"-n {n}: one-mart test, {label} / warm dbtRunner mart alone", floor_ratio, "<= 2x", at_most(2))
                )
            target, check = (">= 10x", at_least(10)) if variant in BASELINE_VARIANTS else ("", None)
            suite_ratio = hand.wall / run.wall if hand and run else None
            rows.append((f"-n {n}: whole suite wall, by hand / {label}", suite_ratio, target, check))
            rss = run.tree_rss_mb / hand.tree_rss_mb if run and hand else None
            rows.append((f"-n {n}: peak memory (summed RSS), {label} / by hand", rss, "<= 1.3x", at_most(1.3)))
            pss = run.tree_pss_mb / hand.tree_pss_mb if run and hand else None
            rows.append((f"-n {n}: peak memory (summed PSS), {label} / by hand", pss, "<= 1.3x", at_most(1.3)))
    if 0 in workers and 2 in workers:
        for variant in VARIANTS:
            serial, parallel = find(runs, variant, 0), find(runs, variant, 2)
            ratio = parallel.wall / serial.wall if serial and parallel else None
            no_slower = at_most(1.0) if variant != "by_hand" else None
            rows.append(
                (f"wall -n 2 / -n 0, {VARIANT_LABELS[variant]}", ratio, "<= 1x" if no_slower else "", no_slower)
            )
    lines = ["| comparison | ratio | target | met |", "|---|---:|---|---|"]
    for label, value, target, check in rows:
        met = "" if check is None else ("n/a" if value is None else ("yes" if check(value) else "**no**"))
        lines.append(f"| {label} | {fmt(value, suffix='x')} | {target} | {met} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def style(variant: str) -> str:
    """Variants written with the plugin share their graph test (and so its snapshot)."""
    return "by_hand" if variant == "by_hand" else "plugin"


def render_document(
    args: argparse.Namespace, marts: list[str], runs: list[Run], floor: dict[str, float] | None, note: str
) -> str:
    revision = plugin_revision()
    if revision != args.revision:
        revision = f"{args.revision} at the start, {revision} now"
    command = " ".join(["python benchmarks/suite.py", *sys.argv[1:]])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"# Suite benchmark\n\n`{command}`, {date}, one run of each{note}; "
        f"load average (1, 5, 15 min) at the end {load}.\n\n"
        f"{args.models} models; the suite: a graph snapshot test and {len(marts)} one-mart tests "
        f"({marts[0]}..{marts[-1]}), each a whole `pytest` run in a fresh copy of the repo.\n\n"
        f"Plugin at {revision}. Machine: {describe_machine()}.\n\n"
        f"{render_runs(runs, floor, marts)}\n\n{render_targets(runs, floor, args.workers)}\n\n"
        "See README.md for what each row measures. Timings are wall-clock and vary with load.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500, help="generated repo size, in models")
    parser.add_argument("--tests", type=int, default=20, help="one-mart tests (capped at the project's marts)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="values of pytest-xdist's -n")
    parser.add_argument("--no-floor", action="store_true", help="skip the warm dbtRunner floor")
    parser.add_argument("--output", type=Path, help="write the tables, with the machine, to this Markdown file")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    if not become_subreaper():
        print("note: not a subreaper; a daemonized descendant would escape the memory sampler", file=sys.stderr)
    args.revision = plugin_revision()
    started = time.perf_counter()
    runs: list[Run] = []
    floor: dict[str, float] | None = None
    with tempfile.TemporaryDirectory(prefix="dbt-assets-suite-") as workdir:
        work = Path(workdir)
        layers = generate(args.models, work / "generated")
        marts = layers.marts[: args.tests]
        if len(marts) < args.tests:
            print(f"note: the {args.models}-model project has {len(marts)} marts; testing all", file=sys.stderr)
        templates: dict[str, Path] = {}
        for variant in args.variants:
            if style(variant) not in templates:
                folder = work / "template" / style(variant)
                templates[style(variant)] = prepare_template(work / "generated", folder, variant, marts)
        for variant in args.variants:
            for workers in args.workers:
                folder = work / f"{variant}-n{workers}"
                repo = copy_repo(templates[style(variant)], folder / "repo")
                write_suite(repo, variant, marts)
                if variant == "baseline_kept":  # the first run builds and keeps the template, untimed
                    first, output = run_pytest(repo, variant, workers)
                    if not first.passed:
                        print(output[-6000:], file=sys.stderr)
                run, output = run_pytest(repo, variant, workers)
                check_no_database(repo)
                runs.append(run)
                status = "passed" if run.passed else f"FAILED (exit {run.exit_code})"
                calls = median(list(run.mart_calls().values()))
                print(
                    f"{column(run)}: {status} in {run.wall:.1f}s (one-mart call median {fmt(calls, suffix=' s')}, "
                    f"tree RSS {run.tree_rss_mb:.0f} MB), load {run.load_before:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
                if not run.passed:
                    print(output[-6000:], file=sys.stderr)
                if run.leftovers:
                    print(f"note: still running 5 s after pytest exited: {run.leftovers}", file=sys.stderr)
                shutil.rmtree(folder)
                if args.output is not None:  # so that an interrupted benchmark keeps what it measured
                    args.output.write_text(render_document(args, marts, runs, floor, ", in progress"))
        if not args.no_floor:
            floor = measure_floor(work / "generated", work / "floor", marts)

    note = f", {time.perf_counter() - started:.0f} s in all"
    if args.output is not None:
        args.output.write_text(render_document(args, marts, runs, floor, note))
    print(render_runs(runs, floor, marts) + "\n\n" + render_targets(runs, floor, args.workers))


if __name__ == "__main__":
    main()
