"""The suite as it was when issue 27 was filed, timed today: its goal is the suite's time at
``-n 2`` at most half of what it was then, with no lost coverage.

    cd benchmarks && python filed_suite.py                  # about 11 + 6 minutes on 2 CPUs
    python filed_suite.py --ids-only > ids.txt              # only the mapping, no run

Runs, one after the other with this environment's interpreter (as own_suite.py does):

- the whole suite at ``--base`` (048f674, the last commit before issue 27's work);
- at the working tree, the tests that ``tests/MOVED.md`` maps each of the base's tests to.

Tests written since (new features, new unit tests) are left out of the second run, so the two
rows time the same behaviours. Prints both rows and the old ids that map to nothing (there
should be none). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from own_suite import ROOT, checkout, print_failed, revision_env, run_suite
from run import describe_machine, run_child

_ID_CELL = re.compile(r"(tests/\S+?\.py)(?:::([^\s,;|]+))?")


def collect(folder: Path) -> list[str]:
    """The test ids pytest collects in ``folder`` (its own package first on the path)."""
    command: list[str | Path] = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only"]
    listed = run_child(command, folder, env=revision_env(folder))
    return [line for line in listed.output.splitlines() if "::" in line]


def read_moves(moved: str) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """tests/MOVED.md as two maps: old module -> new modules (same names), and (old module,
    old test name, or ``name[`` for each of its parameters) -> new id, or ``name[`` for the
    new test's parameter of the same id."""
    modules: dict[str, list[str]] = {}
    tests: dict[tuple[str, str], str] = {}
    section = ""
    for line in moved.splitlines():
        if line.startswith("## "):
            section = line
        if not line.startswith("| tests/"):
            continue
        old, new = (cell.strip() for cell in line.strip("|").split("|")[:2])
        if section.startswith("## Modules moved"):
            modules[old] = [module.strip() for module in new.split(",")]
            continue
        target = _ID_CELL.search(new)
        assert target and target.group(2), line
        new_id = f"{target.group(1)}::{target.group(2)}"
        module = ""
        for part in old.split(","):
            found = _ID_CELL.search(part) if "tests/" in part else None
            if found:
                module, name = found.group(1), found.group(2) or ""
            else:
                name = part.strip().lstrip(":").split(" ")[0]
            if "[" in name:  # each parameter of the test
                tests[(module, name.split("[")[0] + "[")] = new_id.split("[")[0] + "[" if "[" in new_id else new_id
            tests[(module, name)] = new_id
    return modules, tests


def map_ids(old_ids: list[str], new_ids: list[str], moved: str) -> tuple[list[str], list[str]]:
    """The new ids ``old_ids`` map to by tests/MOVED.md, and the old ids that map to none."""
    modules, tests = read_moves(moved)
    present = set(new_ids)
    mapped: set[str] = set()
    lost: list[str] = []
    for old in old_ids:
        module, _, name = old.partition("::")
        function = name.split("[")[0]
        candidates: list[str] = []
        if (module, name) in tests:
            candidates = [tests[(module, name)]]
        elif (module, function + "[") in tests:
            target = tests[(module, function + "[")]
            if target.endswith("["):  # the same parameter id, or each of the renamed ones
                same = target + name[len(function) + 1 :]
                candidates = [same] if same in present else [i for i in new_ids if i.startswith(target)]
            else:
                candidates = [target]
        elif module in modules:
            candidates = [f"{new}::{name}" for new in modules[module]]
        hits = [c for c in candidates if c in present]
        if hits:
            mapped.update(hits)
        else:
            lost.append(old)
    return sorted(mapped), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="048f674", help="the revision the issue was filed at")
    parser.add_argument("--workers", default="2", help="pytest -n (default 2, as `make test`)")
    parser.add_argument("--ids-only", action="store_true", help="print the mapped ids and stop")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="filed-suite-") as temp:
        try:
            base = checkout(args.base, Path(temp))
            old_ids = collect(base)
            new_ids = collect(ROOT)
            ids, lost = map_ids(old_ids, new_ids, (ROOT / "tests" / "MOVED.md").read_text(encoding="utf-8"))
            if args.ids_only:
                print("\n".join(ids))
                return
            results = {
                f"{args.base}, its whole suite ({len(old_ids)} tests)": run_suite(base, [], args.workers),
                f"working tree, those tests mapped ({len(ids)} tests)": run_suite(ROOT, ids, args.workers),
            }
        finally:
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    print(f"{describe_machine()}; load average at the end {os.getloadavg()[0]:.1f}\n")
    print(f"`-n {args.workers}`\n\n| run | wall s | CPU s | outcome | exit |\n|---|---|---|---|---|")
    for name, result in results.items():
        print(f"| {name} | {result['wall']:.0f} | {result['cpu']:.0f} | {result['outcome']} | {result['exit']} |")
    for name, result in results.items():
        print_failed(name, result)
    print(f"\nOld ids that map to no test of the working tree: {len(lost)}")
    for old in lost:
        print(f"- {old}")


if __name__ == "__main__":
    main()
