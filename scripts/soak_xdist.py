"""Run example_project's suite many times under pytest-xdist and count failures and lock errors.

    python scripts/soak_xdist.py --workers 2 4 --runs 30

Each run uses a fresh copy of example_project in a temp folder (never the working tree) and
no retries. Prints one line per run (with the failed tests' names) and a summary table; exits
non-zero if any run failed, hung or showed a DuckDB lock error. A run that outlives the hang
guard (``--hang-guard``, seconds) is stopped and counted as a failure, never as a measure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "IO Error: Could not set lock")
FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class Run:
    passed: bool
    lock_error: bool
    hung: bool
    seconds: float
    failed_tests: list[str]
    tail: str
    output: str


def run_once(workers: int, hang_guard: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        repo = Path(folder) / "example_project"
        shutil.copytree(ROOT / "example_project", repo, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
        # The plugin of this checkout, whichever one is installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", str(workers)],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        hung = False
        try:
            output, _ = process.communicate(timeout=hang_guard)
        except subprocess.TimeoutExpired:
            hung = True
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        seconds = time.perf_counter() - started
    lines = output.strip().splitlines()
    return Run(
        passed=process.returncode == 0 and not hung,
        lock_error=any(marker in output for marker in LOCK_MARKERS),
        hung=hung,
        seconds=seconds,
        failed_tests=sorted(set(FAILED_LINE.findall(output))),
        tail=lines[-1] if lines else "",
        output=output,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="xdist worker counts (-n)")
    parser.add_argument("--runs", type=int, default=30, help="runs per worker count")
    parser.add_argument("--hang-guard", type=float, default=1800, help="seconds before a run counts as hung")
    parser.add_argument("--keep-failures", type=Path, default=None, help="folder for the output of failed runs")
    args = parser.parse_args()
    rows = []
    for workers in args.workers:
        runs: list[Run] = []
        for index in range(1, args.runs + 1):
            run = run_once(workers, args.hang_guard)
            runs.append(run)
            verdict = "HUNG" if run.hung else "pass" if run.passed else "FAIL"
            lock = "  LOCK ERROR" if run.lock_error else ""
            failed = f"  failed: {', '.join(run.failed_tests)}" if run.failed_tests else ""
            print(f"-n {workers} run {index:>2}: {verdict} {run.seconds:6.1f}s{lock}  {run.tail}{failed}", flush=True)
            if args.keep_failures is not None and (not run.passed or run.lock_error):
                args.keep_failures.mkdir(parents=True, exist_ok=True)
                (args.keep_failures / f"n{workers}-run{index}.txt").write_text(run.output, encoding="utf-8")
        times = sorted(run.seconds for run in runs)
        rows.append(
            (
                workers,
                len(runs),
                sum(run.passed for run in runs),
                sum(not run.passed for run in runs),
                sum(run.lock_error for run in runs),
                times[len(times) // 2] if times else 0.0,
            )
        )
    print("\n| workers | runs | passed | failed | lock errors | median wall time |")
    print("|---|---|---|---|---|---|")
    for workers, count, passed, failed, locks, median in rows:
        print(f"| -n {workers} | {count} | {passed} | {failed} | {locks} | {median:.1f} s |")
    return 0 if all(failed == 0 and locks == 0 for _, _, _, failed, locks, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
