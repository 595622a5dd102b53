"""dbt/client.py and dbt/worker.py without a pytest session: the client executable's side of the
protocol, and a worker that cannot start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HANG_GUARD = 600  # seconds; never a measure, only so that a hang ends the test


def _client(folder: Path) -> Path:
    """The ``dbt`` executable the worker writes, for a worker in ``folder``."""
    from pytest_dbt_assets.dbt import client

    executable = folder / "dbt"
    executable.write_text(client.client_script(sys.executable, client.__file__, str(folder)), encoding="utf-8")
    executable.chmod(0o755)
    return executable


def test_client_without_a_worker_says_so_in_one_line(tmp_path: Path) -> None:
    """The client module, run by path under ``-IS`` from the generated executable, fails in
    one line where dagster-dbt shows it: on stderr, or as a dbt JSON error line."""
    executable = _client(tmp_path)
    plain = subprocess.run([executable, "build"], check=False, capture_output=True, text=True, timeout=HANG_GUARD)
    assert plain.returncode == 2
    assert plain.stdout == ""
    assert plain.stderr.startswith(f"pytest-dbt-assets: cannot reach the dbt worker in {tmp_path} (")
    assert plain.stderr.endswith("the plugin restarts it before the next materialization\n")
    assert len(plain.stderr.splitlines()) == 1
    as_json = subprocess.run(
        [executable, "--log-format", "json", "build"], check=False, capture_output=True, text=True, timeout=HANG_GUARD
    )
    assert as_json.returncode == 2
    line = json.loads(as_json.stdout)
    assert line["info"]["level"] == "error" and line["info"]["name"] == "MainEncounteredError"
    assert line["info"]["msg"] == plain.stderr.strip()


def test_client_relays_the_output_and_exit_code_of_the_worker(tmp_path: Path) -> None:
    """The client's side of the protocol: its request (argv, environment, folder) goes to the
    socket; what comes back is copied to stdout up to the exit marker, whose code it exits with."""
    import socket
    import threading

    from pytest_dbt_assets.dbt.client import EXIT_MARKER, SOCKET_NAME

    executable = _client(tmp_path)
    requests = []
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / SOCKET_NAME))
        server.listen(1)

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                requests.append(json.loads(conn.makefile("rb").readline()))
                conn.sendall(b'{"info": {"msg": "1 of 1 OK"}}\n' * 5000 + EXIT_MARKER + b"3\n")

        thread = threading.Thread(target=answer)
        thread.start()
        run = subprocess.run(
            [executable, "build", "--select", "x"],
            check=False,
            capture_output=True,
            timeout=HANG_GUARD,
            cwd=tmp_path,
            env={**os.environ, "DBT_ASSETS_PROBE": "1"},
        )
        thread.join(HANG_GUARD)
    assert run.returncode == 3
    assert run.stdout == b'{"info": {"msg": "1 of 1 OK"}}\n' * 5000
    [request] = requests
    assert request["argv"] == ["build", "--select", "x"]
    assert request["cwd"] == str(tmp_path) and request["env"]["DBT_ASSETS_PROBE"] == "1"


@pytest.mark.usefixtures("no_suite_zygote")  # a fork of the warm zygote has imported dbt already
def test_worker_that_cannot_start_says_why_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose dbt cannot be imported (a broken install) fails with DbtWorkerError:
    how it ended, its last output, and the subprocess runner; later calls say the same."""
    from pytest_dbt_assets.dbt.worker import DbtWorker
    from pytest_dbt_assets.errors import DbtWorkerError

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "agate.py").write_text('raise ImportError("agate is broken in this environment")\n', encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(broken), os.environ.get("PYTHONPATH")])))
    worker = DbtWorker(tmp_path / "dbt_assets_worker0")
    with pytest.raises(DbtWorkerError) as raised:
        worker.start(timeout=HANG_GUARD)
    message = str(raised.value)
    assert message.startswith("The pytest-dbt-assets dbt worker (pid "), message
    assert f"`{sys.executable} -m pytest_dbt_assets.dbt.server`) did not start: it exited with code 1." in message
    assert "\nImportError: agate is broken in this environment\n" in message
    assert message.endswith(
        "\n--dbt-assets-runner=subprocess (ini: dbt_assets_runner = subprocess) runs dbt without the worker."
    )
    assert not worker.folder.exists()
    with pytest.raises(DbtWorkerError) as again:
        worker.ensure_running()
    assert str(again.value) == message
