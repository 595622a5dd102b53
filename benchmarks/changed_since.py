"""Time `--dbt-assets-changed-since` on a generated project: the whole suite, then only the tests
a one-model change touches.

    python benchmarks/changed_since.py --models 500 --tests 50

On the generated N-model repo (generate_project.py), committed as a git repository in a
temporary folder, a suite of a graph test and `--tests - 1` tests each materializing one small
chain (`dbt_select="+<model>"`, the models with the fewest ancestors, spread over the project).
A first run records what each test reaches (pytest's cache); a commit changes the SQL of one
staging model; `pytest --dbt-assets-changed-since=HEAD~1` then runs. Prints the tests
collected, run and deselected, how many the plan says reach the change (its descendants'
chains and the graph test), and the wall time of both runs. Measurement only: nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_project import DBT_DIR, PROD_DUCKDB, Layers, generate
from run import child_env

SUITE = """\
import pytest

MODELS = {models!r}


def test_graph(dbt_asset_graph):
    assert len(dbt_asset_graph.keys) > {n_models}


@pytest.mark.parametrize("model", MODELS)
def test_chain(dbt_assets_materialize, model):
    result = dbt_assets_materialize(dbt_select="+" + model)
    assert result.success, result.failures
"""
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
COUNT = re.compile(r"(\d+) (passed|failed|errors?|deselected)")


def ancestors(layers: Layers, model: str) -> set[str]:
    found: set[str] = set()
    pending = [model]
    while pending:
        for parent in layers.parents.get(pending.pop(), []):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return found


def small_chains(layers: Layers, count: int) -> list[str]:
    """``count`` models with the fewest ancestors, in the order of the project."""
    ranked = sorted(layers.models, key=lambda model: (len(ancestors(layers, model)), layers.models.index(model)))
    chosen = set(ranked[:count])
    return [model for model in layers.models if model in chosen]


def git(repo: Path, *args: str) -> None:
    env = {**child_env(), "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    env.update(GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def timed_pytest(repo: Path, *args: str) -> tuple[float, dict[str, int], str]:
    start = time.perf_counter()
    done = subprocess.run([*PYTEST, *args], cwd=repo, env=child_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args)} exited with {done.returncode}:\n{output[-6000:]}")
    last = output.strip().splitlines()[-1]
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in COUNT.findall(last)}
    return wall, counts, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repo and print where it is")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-changed-"))
    repo = folder / "repo"
    layers = generate(args.models, repo)
    chains = small_chains(layers, args.tests - 1)
    for old in (repo / "tests").glob("test_*.py"):
        old.unlink()
    (repo / "tests" / "test_suite.py").write_text(SUITE.format(models=chains, n_models=args.models))
    (repo / ".gitignore").write_text("target/\nlogs/\n.pytest_cache/\n__pycache__/\n*.duckdb\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message=generated project")

    first_wall, first, _ = timed_pytest(repo)

    # The staging model that the most chosen chains reach, so the run since has work to do.
    def reaching(model: str) -> list[str]:
        return [chain for chain in chains if chain == model or model in ancestors(layers, chain)]

    changed = max(layers.staging, key=lambda model: (0 < len(reaching(model)) < len(chains) // 2, len(reaching(model))))
    path = repo / DBT_DIR / "models" / "staging" / f"{changed}.sql"
    path.write_text(path.read_text().replace("amount from", "amount * 2 as amount from"))
    git(repo, "commit", "--quiet", "--all", f"--message=double {changed}'s amount")

    since_wall, since, output = timed_pytest(repo, "--dbt-assets-changed-since=HEAD~1")
    assert not any(repo.rglob(PROD_DUCKDB)), "a run touched the user's prod DuckDB"

    collected = sum(first.values())
    ran = sum(count for kind, count in since.items() if kind != "deselected")
    print(f"repo: {args.models} models, {len(chains) + 1} tests; changed: {changed} (staging)")
    print(f"tests collected: {collected}")
    print(f"run since HEAD~1: {ran} run, {since.get('deselected', 0)} deselected")
    print(
        f"reaching the change by the plan: {len(reaching(changed))} chains + test_graph = {len(reaching(changed)) + 1}"
    )
    print(f"wall time, full run (records): {first_wall:.1f} s")
    print(f"wall time, --dbt-assets-changed-since=HEAD~1: {since_wall:.1f} s")
    headline = [line for line in output.splitlines() if line.startswith("dbt-assets: changed since")]
    print(*headline, sep="\n")
    if args.keep:
        print(f"repo kept in {repo}")


if __name__ == "__main__":
    main()
