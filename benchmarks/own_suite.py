"""Time this repository's own test suite, or a part of it, at one or more git revisions: the
wall time and the CPU its processes used (issue 27 asks for the suite's time at ``-n 2``).

    python benchmarks/own_suite.py                                    # the whole suite, as it is
    python benchmarks/own_suite.py --revisions 0dd8922 -- tests/e2e/test_failures.py tests/e2e/test_snapshot.py

Each revision but the working tree (``.``) is checked out into a temporary git worktree and run
with the interpreter of this environment, its own package first on ``PYTHONPATH`` (the
editable install would otherwise import the working tree's). Runs are one after the other, so
they do not compete for the CPUs; the CPU time (``os.wait4``: pytest and every process it
waited for, its xdist workers, nested sessions and their dbt processes) varies less with other
load on the machine than the wall time does. Prints a Markdown table, and the modules whose
tests took longest (``--durations=0``, summed per module). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from run import child_env, describe_machine, run_child

ROOT = Path(__file__).resolve().parents[1]
_DURATION = re.compile(r"^([\d.]+)s (?:call|setup|teardown)\s+(\S+?)::")
_OUTCOME = re.compile(r"(\d+ (?:passed|failed|errors?|skipped|deselected)\b.*?) in [\d.]+s")


def revision_env(folder: Path) -> dict[str, str]:
    """The environment of a child run in ``folder``: its own package first on the path."""
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return env


def run_suite(folder: Path, tests: list[str], workers: str) -> dict[str, object]:
    """One pytest run of ``tests`` in ``folder``: wall and CPU seconds, outcome, seconds per module."""
    env = revision_env(folder)
    command: list[str | Path] = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", workers]
    run = run_child([*command, "--dist", "worksteal", "--durations=0", *tests], folder, env=env, check=False)
    lines = run.output.splitlines()
    per_module: collections.Counter[str] = collections.Counter()
    for line in lines:
        if found := _DURATION.match(line):
            per_module[found.group(2)] += float(found.group(1))
    outcome = next((found.group(1) for line in reversed(lines) if (found := _OUTCOME.search(line))), "no summary")
    return {
        "failed": [line for line in lines if line.startswith(("FAILED ", "ERROR "))],
        "wall": run.wall,
        "cpu": run.cpu,
        "outcome": outcome,
        "exit": run.exit,
        "modules": per_module,
    }


def print_failed(name: str, result: dict[str, object]) -> None:
    """The short summary lines (``FAILED``, ``ERROR``) of a run that did not pass."""
    failed = result["failed"]
    assert isinstance(failed, list)
    if failed:
        print(f"\nNot passed at {name}:\n")
        for line in failed:
            print(f"- {line}")


def checkout(revision: str, into: Path) -> Path:
    """``revision``'s tree in a worktree under ``into`` (the working tree itself for ``.``)."""
    if revision == ".":
        return ROOT
    folder = into / revision.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(folder), revision], cwd=ROOT, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", nargs="+", default=["."], help="git revisions; '.' is the working tree")
    parser.add_argument("--workers", default="2", help="pytest -n (default 2, as `make test`)")
    parser.add_argument("--top", type=int, default=12, help="modules listed per revision")
    parser.add_argument("tests", nargs="*", help="test paths or ids (default: the whole suite)")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="own-suite-") as temp:
        try:
            for revision in args.revisions:
                folder = checkout(revision, Path(temp))
                results[revision] = run_suite(folder, args.tests, args.workers)
        finally:
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    print(f"{describe_machine()}; load average at the end {os.getloadavg()[0]:.1f}\n")
    print(f"`-n {args.workers}`, tests: {' '.join(args.tests) or 'the whole suite'}\n")
    print("| revision | wall s | CPU s | outcome | exit |\n|---|---|---|---|---|")
    for revision, result in results.items():
        print(f"| {revision} | {result['wall']:.0f} | {result['cpu']:.0f} | {result['outcome']} | {result['exit']} |")
    for revision, result in results.items():
        print_failed(revision, result)
        modules = result["modules"]
        assert isinstance(modules, collections.Counter)
        print(f"\nLongest modules at {revision} (test seconds, summed over workers):\n")
        for module, seconds in modules.most_common(args.top):
            print(f"- {seconds:.1f} {module}")


if __name__ == "__main__":
    main()
