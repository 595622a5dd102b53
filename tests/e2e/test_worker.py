"""The warm dbt worker under faults: killed as the out-of-memory killer would (SIGKILL),
between and during materializations; its files under pytest's basetemp, removed after the
session, also after the session itself was killed; deep basetemps.

The worker is its own process in every test, as users run it (not forked from the suite's
zygote). The session around it runs in this process, but where the test is about that session's
process: killed, given a temp folder of its own (``TMPDIR``), or under xdist."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_dbt_assets.owner import process_identity
from tests.repos import SHOP_INI, run_pytest, write_files

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("no_suite_zygote")]

HANG_GUARD = 600  # seconds; never a measure, only so that a hang ends the test

# In the user repo (rootdir is on sys.path): the dbt worker as the OOM killer sees it, a
# child process of pytest running `python -m pytest_dbt_assets.dbt.server`, or under xdist a
# child of the controller's `python -m pytest_dbt_assets.dbt.zygote`.
WORKER_TOOLS = """
    import os
    import signal
    import time
    from pathlib import Path


    def _processes():
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                command = (stat.parent / "cmdline").read_text()
            except OSError:
                continue
            yield int(stat.parent.name), int(fields[1]), fields[0], command


    def worker_pid():
        # This pytest's dbt worker: its child, or, under xdist, forked by the controller's zygote.
        processes = [(pid, parent, command) for pid, parent, state, command in _processes() if state != "Z"]
        pids = [pid for pid, parent, command in processes if parent == os.getpid() and "dbt.server" in command]
        if not pids:
            zygotes = zygote_pids()
            pids = [pid for pid, parent, _ in processes if parent in zygotes]
        assert len(pids) == 1, pids
        return pids[0]


    def zygote_pids():
        # The zygotes the xdist controller (this worker's parent) started.
        return [
            pid for pid, parent, state, command in _processes()
            if parent == os.getppid() and state != "Z" and "pytest_dbt_assets.dbt.zygote" in command
        ]


    def gone(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
        except OSError:
            return True


    def wait_until(predicate, guard=600):
        deadline = time.monotonic() + guard  # a hang guard, not a measure
        while not predicate():
            assert time.monotonic() < deadline, "hang guard"
            time.sleep(0.05)


    def kill_worker():
        pid = worker_pid()
        os.kill(pid, signal.SIGKILL)
        # Until every thread of it has exited (its socket closed), leaving it to pytest to reap.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return pid
"""

KILLED_BETWEEN_TEST = """
    from pathlib import Path

    from worker_tools import kill_worker, worker_pid


    def test_killed_between_materializations(dbt_assets_materialize):
        assert dbt_assets_materialize(dbt_select="+customers").success
        killed = kill_worker()
        Path("killed.txt").write_text(str(killed))
        result = dbt_assets_materialize(dbt_select="+customers")
        assert result.success, result.failures
        assert result.row_counts["acme/marts/customers"] == 3
        assert worker_pid() != killed
"""


def _said(run: subprocess.CompletedProcess[str]) -> str:
    """What an inner run reported: the failing lines and errors, then the summary."""
    lines = run.stdout.splitlines()
    kept = [line for line in lines if line.startswith((">", "E  ")) and "site-packages" not in line]
    return "\n".join([*kept[:60], "...", *lines[-25:]])


def _run_in_process(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    """The user's session in this process, read as ``run_pytest``'s: for the tests of the
    worker's life, which is its own process either way (``no_suite_zygote``); a fresh pytest
    around it would only add its start-up (CONTRIBUTING: what a nested run costs)."""
    result = pytester.runpytest("-p", "no:cacheprovider", "-q", *args)
    return subprocess.CompletedProcess(list(args), int(result.ret), result.stdout.str(), result.stderr.str())


def _repo(shop_repo: pytest.Pytester, files: dict[str, str]) -> Path:
    write_files(shop_repo.path, {"worker_tools.py": WORKER_TOOLS, **files})
    return shop_repo.path


def test_worker_killed_between_materializations_is_restarted_with_a_warning(shop_repo: pytest.Pytester) -> None:
    repo = _repo(shop_repo, {"tests/test_run.py": KILLED_BETWEEN_TEST})
    run = _run_in_process(shop_repo)
    assert run.returncode == 0, _said(run)
    killed = (repo / "killed.txt").read_text()
    output = " ".join(run.stdout.split())  # the warnings summary wraps nothing, but be safe
    assert (
        f"DbtWorkerRestartedWarning: The pytest-dbt-assets dbt worker (pid {killed}) was killed by SIGKILL, "
        "as the out-of-memory killer does" in output
    ), _said(run)
    assert "It was restarted (new pid" in output, _said(run)


# Which worker processes pytest has while it collects, and while each test runs.
SEEN_WORKERS_CONFTEST = """
    import json
    import os
    from pathlib import Path

    from worker_tools import _processes

    def workers():
        return sorted(
            pid for pid, parent, state, command in _processes()
            if parent == os.getpid() and state != "Z" and "pytest_dbt_assets.dbt.server" in command
        )


    def note(when):
        seen = json.loads(Path("seen.json").read_text()) if Path("seen.json").exists() else {}
        seen[when] = workers()
        Path("seen.json").write_text(json.dumps(seen))


    def pytest_collection_modifyitems(items):
        note("collecting")
"""


def test_worker_starts_with_the_session_and_stops_when_no_test_needs_it(shop_repo: pytest.Pytester) -> None:
    # It starts before collection ends (its dbt imports overlap the session's start-up); a
    # session whose tests never materialize stops it at the end of collection.
    repo = _repo(
        shop_repo,
        {
            "tests/conftest.py": SEEN_WORKERS_CONFTEST,
            "tests/test_graph.py": """
                from conftest import note


                def test_graph(dbt_asset_graph):
                    note("graph")
                    assert "acme/marts/customers" in dbt_asset_graph.keys
            """,
        },
    )
    graph_only = _run_in_process(shop_repo)
    assert graph_only.returncode == 0, _said(graph_only)
    seen = json.loads((repo / "seen.json").read_text())
    assert len(seen["collecting"]) == 1 and seen["graph"] == [], seen
    # A session that materializes is served by that same process.
    (repo / "seen.json").unlink()
    write_files(
        repo,
        {
            "tests/test_run.py": """
                from conftest import note


                def test_run(dbt_assets_materialize):
                    assert dbt_assets_materialize(dbt_select="+customers").success
                    note("run")
            """
        },
    )
    both = _run_in_process(shop_repo)
    assert both.returncode == 0, _said(both)
    seen = json.loads((repo / "seen.json").read_text())
    assert len(seen["collecting"]) == 1 and seen["graph"] == seen["run"] == seen["collecting"], seen
    # Listing tests starts none.
    (repo / "seen.json").unlink()
    listed = _run_in_process(shop_repo, "--collect-only")
    assert listed.returncode == 0, _said(listed)
    assert json.loads((repo / "seen.json").read_text())["collecting"] == []


def test_worker_killed_twice_fails_naming_the_subprocess_runner(shop_repo: pytest.Pytester) -> None:
    _repo(
        shop_repo,
        {
            "tests/test_run.py": KILLED_BETWEEN_TEST
            + """

    def test_killed_again(dbt_assets_materialize):
        kill_worker()
        dbt_assets_materialize(dbt_select="+customers")


    def test_later_materializations_say_the_same(dbt_assets_materialize):
        dbt_assets_materialize(dbt_select="+orders")
""",
        },
    )
    run = _run_in_process(shop_repo)
    assert run.returncode == 1, _said(run)
    assert "1 passed" in run.stdout and "2 failed" in run.stdout, _said(run)
    output = " ".join(run.stdout.split())
    for expected in (
        "DbtWorkerError: The pytest-dbt-assets dbt worker (pid",
        "was killed by SIGKILL, as the out-of-memory killer does",
        "This is its second death in this session",
        "so it is not restarted again. --dbt-assets-runner=subprocess",
    ):
        assert output.count(expected) >= 2, (expected, _said(run))
    assert "Traceback" not in run.stdout and "dbt/worker.py" not in run.stdout, _said(run)


def test_worker_killed_during_a_materialization_is_named_in_its_failures(
    shop_repo: pytest.Pytester, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    repo = _repo(
        shop_repo,
        {
            # A Python model that waits, inside dbt, until the test lets it go.
            "shop/models/marts/stuck.py": f"""
                import os
                import time
                from pathlib import Path


                def model(dbt, session):
                    dbt.config(materialized="table")
                    Path({str(started)!r}).write_text(str(os.getpid()))
                    deadline = time.monotonic() + 600  # hang guard
                    while not Path({str(release)!r}).exists() and time.monotonic() < deadline:
                        time.sleep(0.05)
                    return session.sql("select 1 as x")
            """,
            "tests/test_run.py": f"""
                import threading
                from pathlib import Path

                from worker_tools import gone, kill_worker, wait_until, worker_pid

                STARTED, RELEASE = Path({str(started)!r}), Path({str(release)!r})


                def kill_inside_dbt():
                    wait_until(STARTED.exists)
                    dbt_pid = int(STARTED.read_text())
                    Path("killed.txt").write_text(str(kill_worker()))
                    try:
                        wait_until(lambda: gone(dbt_pid), guard=300)  # dbt goes with its worker
                    finally:
                        RELEASE.write_text("go")


                def test_killed_during(dbt_assets_materialize):
                    killer = threading.Thread(target=kill_inside_dbt, daemon=True)
                    killer.start()
                    result = dbt_assets_materialize(dbt_select="stuck", raise_on_error=False)
                    killer.join()
                    Path("failures.txt").write_text("\\n".join(result.failures))
                    assert not result.success
                    again = dbt_assets_materialize(dbt_select="+customers")
                    assert again.success, again.failures
            """,
        },
    )
    run = _run_in_process(shop_repo)
    assert run.returncode == 0, _said(run)
    killed = (repo / "killed.txt").read_text()
    failures = " ".join((repo / "failures.txt").read_text().split())
    assert (
        f"The pytest-dbt-assets dbt worker (pid {killed}) was killed by SIGKILL, as the out-of-memory killer does"
        in failures
    ), failures
    assert "dbt's commands in this materialization lost their worker" in failures, failures
    # The client's own line, which dagster-dbt shows among dbt's errors.
    assert "pytest-dbt-assets: the dbt worker went away before dbt finished" in failures, failures
    assert "DbtWorkerRestartedWarning" in run.stdout, _said(run)


SEEN_TEST = """
    import json
    from pathlib import Path

    from worker_tools import worker_pid


    def test_run(dbt_assets_materialize, dbt_assets_dbt_executable, tmp_path_factory):
        assert dbt_assets_materialize(dbt_select="+customers").success
        seen = {
            "executable": dbt_assets_dbt_executable,
            "basetemp": str(tmp_path_factory.getbasetemp()),
            "pid": worker_pid(),
        }
        Path("seen.json").write_text(json.dumps(seen))
"""


def _isolated_temp_env(tmp_path: Path) -> dict[str, str]:
    """pytest's temp root and the system temp folder both inside this test's tmp_path."""
    (tmp_path / "tmpdir").mkdir()
    (tmp_path / "root").mkdir()
    return {**os.environ, "TMPDIR": str(tmp_path / "tmpdir"), "PYTEST_DEBUG_TEMPROOT": str(tmp_path / "root")}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    except OSError:
        return False


def test_a_command_that_parses_after_the_worker_parsed_in_full_runs(shop_repo: pytest.Pytester) -> None:
    """Each dbt command runs in a child forked from the worker, and one that parses itself
    (``dbt ls``, ``run-operation``: the worker keeps a manifest for build, run, test and the
    like) waited for ever after the worker had parsed in full (vars other than the start-up
    parse's) with dbt's static parser, whose threads a forked child does not have."""
    _repo(
        shop_repo,
        {
            "shop_dagster/lister.py": """
                import dagster as dg
                from dagster_dbt import DbtCliResource

                from shop_dagster.definitions import defs as shop_defs


                @dg.asset
                def model_count(dbt: DbtCliResource):
                    listed = dbt.cli(["ls", "--resource-type", "model", "--output", "name"]).wait()
                    names = [str(event) for event in listed.stream_raw_events()]
                    return dg.MaterializeResult(metadata={"listed": len(names)})


                defs = dg.Definitions(assets=[*shop_defs.assets, model_count], resources=shop_defs.resources)
            """,
            "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.lister:defs"),
            "tests/test_list.py": """
                def test_list_after_a_build_with_vars(dbt_assets_materialize):
                    assert dbt_assets_materialize(dbt_select="+stg_customers", vars={"region": "eu"}).success
                    assert dbt_assets_materialize(["model_count"]).success
            """,
        },
    )
    run = _run_in_process(shop_repo)
    assert run.returncode == 0, _said(run)


def test_worker_files_live_under_basetemp_and_are_removed(shop_repo: pytest.Pytester, tmp_path: Path) -> None:
    repo = _repo(shop_repo, {"tests/test_run.py": SEEN_TEST})
    run = run_pytest(repo, env=_isolated_temp_env(tmp_path), timeout=HANG_GUARD)
    assert run.returncode == 0, _said(run)
    seen = json.loads((repo / "seen.json").read_text())
    executable, basetemp = Path(seen["executable"]), Path(seen["basetemp"])
    assert executable.is_relative_to(basetemp), seen
    assert not executable.parent.exists(), f"worker folder left behind: {sorted(executable.parent.iterdir())}"
    assert not _alive(seen["pid"])
    assert sorted(os.listdir(tmp_path / "tmpdir")) == []


def test_next_session_removes_the_folder_of_a_killed_session(shop_repo: pytest.Pytester, tmp_path: Path) -> None:
    repo = _repo(
        shop_repo,
        {
            "tests/test_run.py": SEEN_TEST
            + """

    def test_stays(dbt_assets_dbt_executable):
        import time
        deadline = time.monotonic() + 600  # until the outer test kills this session
        while time.monotonic() < deadline:
            time.sleep(0.1)
"""
        },
    )
    env = _isolated_temp_env(tmp_path)
    killed = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not (repo / "seen.json").exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        killed_identity = process_identity(killed.pid)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    seen = json.loads((repo / "seen.json").read_text())
    # A session killed during collection leaves its start-up parse's copy in the temp folder
    # (later it has moved into the basetemp): the next session removes it, and leaves alone
    # one whose owner still runs and one that names no owner.
    temp = tmp_path / "tmpdir"
    for name, owner in (("killed", killed_identity), ("alive", process_identity(os.getpid())), ("foreign", None)):
        (temp / f"pytest-dbt-assets-{name}/project").mkdir(parents=True)
        if owner is not None:
            (temp / f"pytest-dbt-assets-{name}/owner").write_text(owner + "\n")
    stale = Path(seen["executable"]).parent
    assert stale.is_dir() and Path(seen["basetemp"]) in stale.parents, seen  # left by the SIGKILL
    deadline = time.monotonic() + HANG_GUARD
    while _alive(seen["pid"]) and time.monotonic() < deadline:  # the worker follows its pytest
        time.sleep(0.1)
    assert not _alive(seen["pid"])

    (repo / "seen.json").unlink()
    run = run_pytest(repo, "tests/test_run.py::test_run", env=env, timeout=HANG_GUARD)
    assert run.returncode == 0, _said(run)
    assert not stale.exists(), f"stale worker folder kept: {sorted(stale.iterdir())}"
    assert not Path(json.loads((repo / "seen.json").read_text())["executable"]).parent.exists()
    assert sorted(os.listdir(temp)) == ["pytest-dbt-assets-alive", "pytest-dbt-assets-foreign"]


ZYGOTE_TEST = """
    import json
    import os
    from pathlib import Path

    from worker_tools import _processes, zygote_pids


    def test_run(dbt_assets_materialize, worker_id):
        assert dbt_assets_materialize(dbt_select="+customers").success
        seen = {
            "zygotes": zygote_pids(),
            "own servers": [
                pid for pid, parent, state, command in _processes()
                if parent == os.getpid() and "pytest_dbt_assets.dbt.server" in command
            ],
        }
        Path(f"seen-{worker_id}.json").write_text(json.dumps(seen))
"""


def test_under_xdist_the_workers_dbt_workers_are_forked_from_one_zygote(
    shop_repo: pytest.Pytester, tmp_path: Path
) -> None:
    """dbt is imported once, by the controller's zygote, not by each worker's dbt worker; the
    zygote and its socket's folder are gone after the run."""
    repo = _repo(shop_repo, {"tests/test_run.py": ZYGOTE_TEST})
    run = run_pytest(repo, "-n", "2", "--dist", "each", env=_isolated_temp_env(tmp_path), timeout=HANG_GUARD)
    assert run.returncode == 0, _said(run)
    seen = [json.loads((repo / f"seen-gw{n}.json").read_text()) for n in (0, 1)]
    assert seen[0]["zygotes"] == seen[1]["zygotes"] and len(seen[0]["zygotes"]) == 1, seen
    assert seen[0]["own servers"] == seen[1]["own servers"] == [], seen
    assert not _alive(seen[0]["zygotes"][0])
    assert sorted(os.listdir(tmp_path / "tmpdir")) == []


def test_long_basetemp_under_xdist(shop_repo: pytest.Pytester, tmp_path: Path) -> None:
    repo = _repo(shop_repo, {"tests/test_run.py": SEEN_TEST})
    basetemp = tmp_path.joinpath(*["a_basetemp_folder_with_a_long_name"] * 5)
    assert len(str(basetemp / "popen-gw0" / "dbt_assets_worker0" / "s")) > 200
    basetemp.parent.mkdir(parents=True)
    run = run_pytest(repo, "-n", "1", f"--basetemp={basetemp}", timeout=HANG_GUARD)
    assert run.returncode == 0, _said(run)
    seen = json.loads((repo / "seen.json").read_text())
    assert Path(seen["executable"]).is_relative_to(basetemp / "popen-gw0"), seen
