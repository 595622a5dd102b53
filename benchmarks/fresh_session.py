"""What a fresh pytest process costs before a test does its own work: the floor under the suite's
nested runs in a fresh interpreter (``run_pytest``, each xdist worker of a nested ``-n 2`` run,
the base-side run of a diff), which issue 27's suite-time goal has to fit under.

    cd benchmarks && python fresh_session.py --tests 6 --repeat 3

On the suite's shop repo (tests/repos.py) with ``--tests`` materializing tests, after one run
that fills the plugin's caches, it times (median of ``--repeat``, CPU from ``os.wait4``: the
process and every process it waited for, its workers and dbt's):

- importing dagster and dagster-dbt alone, what the user's definitions cost every process;
- the session at ``-n 0`` and at ``-n 2``: the difference is what two xdist workers add.

No zygote is named here (a user's session): each session's dbt worker imports dbt itself.
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from run import describe_machine, run_child

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.repos import SHOP_DAGSTER_FILES, SHOP_DBT_FILES, SHOP_INI, write_files

MATERIALIZING_TESTS = """
    import pytest


    @pytest.mark.parametrize("n", range(COUNT))
    def test_marts(dbt_assets_materialize, n):
        assert dbt_assets_materialize(dbt_select="+customers +orders").success
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=6, help="materializing tests in the session")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    pytest_command: list[str | Path] = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    cases: dict[str, list[str | Path]] = {
        "import dagster, dagster_dbt": [sys.executable, "-c", "import dagster, dagster_dbt"],
        "session -n 0": [*pytest_command, "-n", "0"],
        "session -n 2": [*pytest_command, "-n", "2"],
    }
    with tempfile.TemporaryDirectory(prefix="fresh-session-") as temp:
        repo = Path(temp)
        test = MATERIALIZING_TESTS.replace("COUNT", str(args.tests))
        write_files(
            repo, {**SHOP_DBT_FILES, **SHOP_DAGSTER_FILES, "pyproject.toml": SHOP_INI, "tests/test_run.py": test}
        )
        run_child(cases["session -n 0"], repo)  # fills the plugin's caches, as an earlier run has
        results = {name: [run_child(command, repo) for _ in range(args.repeat)] for name, command in cases.items()}

    print(f"{describe_machine()}; load average at the end {os.getloadavg()[0]:.1f}\n")
    print(f"shop repo, {args.tests} materializing tests, median of {args.repeat}\n")
    print("| case | wall s | CPU s |\n|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(run.wall for run in runs)
        cpu = statistics.median(run.cpu for run in runs)
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    added = statistics.median(run.cpu for run in results["session -n 2"]) - statistics.median(
        run.cpu for run in results["session -n 0"]
    )
    print(f"\nTwo xdist workers add {added:.1f} CPU s ({added / 2:.1f} each).")


if __name__ == "__main__":
    main()
