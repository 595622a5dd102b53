"""dbt/warmup.py in a fresh Python: the zygote's build of a throwaway project passes whatever
dbt settings the user's environment holds, leaves nothing behind, and a child forked after it
parses a project with dbt's static parser (whose threads a forked child does not have, had the
warm-up started them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, sys, threading
from pathlib import Path

from pytest_dbt_assets.compat import dbt as dbt_compat
from pytest_dbt_assets.dbt.warmup import warm_dbt_runtime

folder, project = Path(sys.argv[1]), sys.argv[2]
dbt_compat.warm_dbt_imports()
env, cwd = dict(os.environ), os.getcwd()
built = warm_dbt_runtime(folder)
facts = {
    "built": built,
    "left": sorted(path.name for path in folder.iterdir()),
    "threads": threading.active_count(),
    "env kept": dict(os.environ) == env,
    "cwd kept": os.getcwd() == cwd,
}
child = os.fork()
if child == 0:
    from dbt.cli.main import dbtRunner

    flags = ["--project-dir", project, "--profiles-dir", project, "--target-path", project + "/target"]
    parsed = dbtRunner().invoke(["parse", *flags, "--log-level", "none"])
    os._exit(0 if parsed.success else 1)
facts["child parsed"] = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
print(json.dumps(facts))
"""


def test_the_warm_up_builds_leaves_nothing_and_forked_children_still_parse(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: mine\nprofile: mine\n")
    (project / "profiles.yml").write_text(
        f"mine:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{tmp_path / 'mine.duckdb'}'\n"
    )
    (project / "models" / "plain.sql").write_text("select 1 as id")  # what the static parser reads
    folder = tmp_path / "zygote"
    folder.mkdir()
    # The user's dbt settings, which must not reach the throwaway project.
    env = {"DBT_PROFILES_DIR": str(tmp_path / "nowhere"), "DBT_TARGET_PATH": str(tmp_path / "elsewhere")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(project)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**_environment(), **env},
        timeout=600,  # a hang guard (a child waiting for threads it lacks), not a measure
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # dbt's output of the warm-up goes nowhere
    facts = json.loads(done.stdout.splitlines()[-1])
    assert facts == {
        "built": True,
        "left": [],
        "threads": 1,
        "env kept": True,
        "cwd kept": True,
        "child parsed": True,
    }
    assert not (tmp_path / "elsewhere").exists()


def _environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("DBT_")}
