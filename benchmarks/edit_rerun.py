"""Time the loop users live in: run the suite, edit one model, run it again.

    python benchmarks/edit_rerun.py --models 200 --repeat 3

On the generated N-model repo (generate_project.py) with its four tests, in a fresh temporary
copy per repeat: a first session on a fresh clone (no `target/`: a full start-up parse), a
second with nothing changed (the manifest from the cache, no parse), then, `--edits` times,
one staging model's SQL edited and a session run (the start-up parse starts from the earlier
one's partial-parse file, so dbt parses only that model again). Prints the median wall time of
each kind of session. To compare with another checkout of the plugin, run it with
`PYTHONPATH=<that checkout>`. Measurement only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_project import DBT_DIR, PROD_DUCKDB, generate
from run import child_env

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist"]


def timed_pytest(repo: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(PYTEST, cwd=repo, env=child_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"pytest exited with {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--edits", type=int, default=2, help="edited sessions per repeat")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-edit-"))
    generated = folder / "generated"
    layers = generate(args.models, generated)
    times: dict[str, list[float]] = {"fresh clone": [], "unchanged": [], "one model edited": []}
    for repeat in range(args.repeat):
        repo = folder / f"repo{repeat}"
        shutil.copytree(generated, repo)
        times["fresh clone"].append(timed_pytest(repo))
        times["unchanged"].append(timed_pytest(repo))
        for edit in range(args.edits):
            model = layers.staging[edit % len(layers.staging)]
            path = repo / DBT_DIR / "models" / "staging" / f"{model}.sql"
            path.write_text(path.read_text() + f"\n-- edit {repeat}.{edit}\n")
            times["one model edited"].append(timed_pytest(repo))
        assert not any(repo.rglob(PROD_DUCKDB)), "a run touched the user's prod DuckDB"
    print(f"repo: {args.models} models, 4 tests, {args.repeat} repeats (median wall time of each session)")
    print("| session | wall |\n|---|---|")
    for name, walls in times.items():
        print(f"| {name} | {statistics.median(walls):.1f} s |")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
