"""Time example_project's tests under pytest-xdist: wall time and the CPU the whole machine spent.

    python benchmarks/xdist_cpu.py --workers 0 2 --repeat 3
    PYTHONPATH=<another checkout> python benchmarks/xdist_cpu.py --workers 2   # compare

Each run is a whole `pytest -q` in a fresh copy of example_project (no `target/`, caches or
databases), after one untimed warm-up run that fills the operating system's file cache. The
CPU is the machine's busy time over the run, read from `/proc/stat` (Linux): it counts every
process a run starts (xdist's workers, the dbt workers and their zygote, dbt's children), which
a child's own accounting would miss for processes that are not its descendants. Run it on an
otherwise idle machine. Prints the median of each; measurement only, nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import child_env

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """The machine's busy CPU time so far (user, nice, system, irq, softirq, steal), in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def timed_run(workers: int) -> tuple[float, float]:
    """Wall and busy CPU seconds of one pytest run of a fresh copy of example_project."""
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "example_project"
        shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("target", "*.duckdb", ".pytest_cache"))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        command += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        cpu, start = busy_seconds(), time.perf_counter()
        done = subprocess.run(command, cwd=repo, env=child_env(), capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - start, busy_seconds() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"pytest exited with {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="values of pytest-xdist's -n")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    timed_run(args.workers[0])  # warm-up: the file cache, compiled bytecode
    for workers in args.workers:
        runs = [timed_run(workers) for _ in range(args.repeat)]
        walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
        print(
            f"-n {workers}: wall {statistics.median(walls):.1f} s (runs {', '.join(f'{w:.1f}' for w in walls)}), "
            f"busy CPU {statistics.median(cpus):.1f} s"
        )


if __name__ == "__main__":
    main()
