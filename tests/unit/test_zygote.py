"""dbt/zygote.py without a pytest session: a dbt worker forked from a warm zygote runs dbt and
is watched, killed, restarted and stopped as a worker started as its own process is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dbt_assets.dbt.worker import DbtWorker
from pytest_dbt_assets.dbt.zygote import ZYGOTE_ENV, Zygote

HANG_GUARD = 600  # seconds; never a measure, only so that a hang ends the test


@pytest.fixture
def zygote() -> Iterator[subprocess.Popen[bytes]]:
    """A zygote of this test's own (not the suite's), named in the environment meanwhile."""
    zygote = Zygote()
    yield zygote.process
    zygote.stop()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (waiting up to the hang guard)."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_forked_worker_runs_dbt_and_is_watched_as_a_started_one(
    zygote: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    worker = DbtWorker(tmp_path / "dbt_assets_worker0")
    umask = os.umask(0o027)  # the asking pytest's, not the zygote's, goes to the server
    try:
        worker.start(timeout=HANG_GUARD)
        first = worker.pid
        assert first is not None and _parent_of(first) == zygote.pid
        assert "Umask:\t0027" in Path(f"/proc/{first}/status").read_text()
        run = subprocess.run(
            [worker.executable, "--version"], capture_output=True, text=True, timeout=HANG_GUARD, check=False
        )
        assert run.returncode == 0 and "Core:" in run.stdout, run.stdout + run.stderr
        os.kill(first, signal.SIGKILL)
        assert _gone(first)
        deadline = time.monotonic() + HANG_GUARD
        while (death := worker.death_during_call()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert death is not None and f"(pid {first}) was killed by SIGKILL" in death, death
        restarted = worker.ensure_running()
        assert restarted is not None and "It was restarted (new pid" in restarted
        second = worker.pid
        assert second is not None and second != first and _parent_of(second) == zygote.pid
    finally:
        os.umask(umask)
        worker.stop()
    assert _gone(second)
    assert not worker.folder.exists()


def test_a_forked_worker_ends_with_the_pytest_that_asked_for_it(
    zygote: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """A session killed before it could stop its worker leaves nothing running."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pytest_dbt_assets.dbt.worker import DbtWorker\n"
        "worker = DbtWorker(Path(sys.argv[1]))\n"
        "worker.start(600)\n"
        "print(worker.pid, flush=True)\n"
        "os._exit(0)  # no stop(): as if killed\n"
    )
    owner = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "dbt_assets_worker0")],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=True,
    )
    pid = int(owner.stdout)
    assert _gone(pid)
    assert zygote.poll() is None, "the zygote outlives the sessions it served"


def test_without_a_zygote_to_ask_the_worker_is_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no-zygote").mkdir()
    monkeypatch.setenv(ZYGOTE_ENV, str(tmp_path / "no-zygote"))
    worker = DbtWorker(tmp_path / "dbt_assets_worker0")
    try:
        worker.start(timeout=HANG_GUARD)
        assert worker.pid is not None and _parent_of(worker.pid) == os.getpid()
    finally:
        worker.stop()


def test_the_zygote_forks_only_for_its_own_python(
    zygote: subprocess.Popen[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker must run the Python (and so the packages) of the pytest that asks."""
    import socket

    from pytest_dbt_assets.dbt.zygote import fork_server

    monkeypatch.setattr(sys, "executable", str(tmp_path / "another" / "python"))
    with socket.socket(socket.AF_UNIX) as server:
        assert fork_server(server, None) is None
    assert zygote.poll() is None
