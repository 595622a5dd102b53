"""Run example_project's suite many times under pytest-xdist and count failures and lock errors.

    python scripts/soak_xdist.py --workers 2 4 --runs 30

Each run uses a fresh copy of example_project in a temp folder (never the working tree) and
no retries. Prints one line per run and a summary table; exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "IO Error: Could not set lock")


def run_once(workers: int) -> tuple[bool, bool, float, str]:
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        repo = Path(folder) / "example_project"
        shutil.copytree(ROOT / "example_project", repo, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", str(workers)],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
    output = result.stdout + result.stderr
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return result.returncode == 0, any(marker in output for marker in LOCK_MARKERS), elapsed, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rows = []
    for workers in args.workers:
        passed = locks = 0
        times = []
        for index in range(1, args.runs + 1):
            ok, lock, elapsed, tail = run_once(workers)
            passed += ok
            locks += lock
            times.append(elapsed)
            print(f"-n {workers} run {index:>2}: {'pass' if ok else 'FAIL'} {elapsed:5.1f}s  {tail}", flush=True)
        times.sort()
        rows.append((workers, args.runs, passed, locks, times[len(times) // 2]))
    print("\n| workers | runs | passed | lock errors | median wall time |")
    print("|---|---|---|---|---|")
    for workers, runs, passed, locks, median in rows:
        print(f"| -n {workers} | {runs} | {passed} | {locks} | {median:.1f} s |")
    return 0 if all(passed == runs and locks == 0 for _, runs, passed, locks, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
