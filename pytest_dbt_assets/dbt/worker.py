"""A warm dbt for dagster-dbt, the pytest side: :class:`DbtWorker` starts (or has a zygote
fork, :mod:`.zygote`), watches, restarts and stops the worker process (:mod:`.server`), whose
``dbt`` client (:mod:`.client`) dagster-dbt runs through ``DbtCliResource.dbt_executable``.

dagster-dbt runs every ``dbt.cli(...)`` as a subprocess and reads dbt's JSON log lines from
its stdout. Starting that subprocess costs seconds (Python, dbt and adapter imports, then a
parse). Here the executable is a tiny client (standard library only, started with ``-IS``)
that hands its argv, environment and working folder to the server over a Unix socket.
dagster-dbt still sees a process that prints dbt's own JSON lines and exits with dbt's code,
so its events, metadata and check results are unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from pytest_dbt_assets.dbt import client
from pytest_dbt_assets.dbt.client import READY_LINE, SERVE_LINE, SOCKET_NAME, client_script
from pytest_dbt_assets.dbt.runner import DbtProjectDirs, dbt_environment
from pytest_dbt_assets.dbt.sockets import SUBPROCESS_HINT, bind_in, socket_in
from pytest_dbt_assets.dbt.zygote import ZYGOTE_ENV, ForkedServer, fork_server
from pytest_dbt_assets.errors import DbtWorkerError
from pytest_dbt_assets.owner import claim, remove_abandoned

SERVER_MODULE = "pytest_dbt_assets.dbt.server"
CLIENT_NAME = "dbt"
FOLDER_PREFIX = "dbt_assets_worker"
_OOM_HINT = "as the out-of-memory killer does (`dmesg` or `journalctl -k` shows 'Out of memory: Killed process')"


class DbtWorker:
    """Starts, watches and stops the worker process; ``executable`` goes into ``DbtCliResource``.

    Everything it creates lives in ``folder`` (under pytest's basetemp): the client script
    ``dbt``, the socket and an ``owner`` file naming the pytest process, so a later session
    can remove the folder of one that was killed (:func:`remove_stale_folders`).

    ``spawn()`` starts the process before the folder exists (before pytest knows a test needs
    it), so its dbt imports overlap the session's start-up; ``launch()`` binds the socket in
    the folder and lets it serve, spawning it first if that was not done, and returns at once:
    requests (``prepare_build``, dbt commands) queue up while it is still importing dbt.
    ``wait_ready()`` tells whether it started. A worker that dies is restarted once by
    :meth:`ensure_running`, on the same socket and client script.
    """

    def __init__(
        self, folder: Path | None = None, cache_dir: Path | None = None, seed: tuple[Path, str] | None = None
    ) -> None:
        self.cache_dir = cache_dir
        self.seed = seed  # where the plugin's start-up parse of the project is cached (folder, key)
        self.folder = folder or Path()
        self.executable = self.folder / CLIENT_NAME
        self.launched = False
        self._unbound: socket.socket | None = None  # the socket of a spawned process, bound at launch()
        self.deaths: list[str] = []  # how each worker process of the session died
        self._process: subprocess.Popen[str] | ForkedServer | None = None
        self._ready = False
        self._prepared: dict[Path, socket.socket] = {}
        self._prepare_requests: dict[Path, dict[str, Any]] = {}
        self._death_counted: int | None = None  # pid of the last process whose death is in `deaths`
        self._failure: str | None = None  # why the worker cannot serve any more

    @property
    def pid(self) -> int | None:
        """The worker process's id (None before ``launch()`` and after ``stop()``)."""
        return self._process.pid if self._process is not None else None

    def spawn(self) -> None:
        """Start the worker process now; it imports dbt, then waits for :meth:`launch`.

        A Python that cannot be started leaves it to :meth:`launch`, which says so only if a
        test needs the worker."""
        if self._process is None:
            self._unbound = socket.socket(socket.AF_UNIX)
            try:
                self._popen(self._unbound)
            except OSError:
                self._unbound.close()
                self._unbound = None

    def launch(self, folder: Path | None = None) -> None:
        """Make the client and the socket in ``folder`` (or the one given at construction)
        and let the worker serve on it."""
        if folder is not None:
            self.folder, self.executable = folder, folder / CLIENT_NAME
        self.folder.mkdir(parents=True, exist_ok=True)
        claim(self.folder)
        self.executable.write_text(
            client_script(sys.executable, str(Path(client.__file__).resolve()), str(self.folder)), encoding="utf-8"
        )
        self.executable.chmod(0o755)
        self.launched = True
        unbound, self._unbound = self._unbound, None
        if unbound is None:
            self._start_process()
            return
        # The spawned process holds the same socket: bound and listening here, it serves there.
        with contextlib.closing(unbound):
            bind_in(unbound, self.folder)
            unbound.listen(16)
        self._tell_serve()

    def _start_process(self) -> None:
        self._ready = False
        with contextlib.suppress(FileNotFoundError):
            (self.folder / SOCKET_NAME).unlink()  # left by a worker that died
        with socket_in(self.folder, bind=True) as server:
            server.listen(16)
            self._popen(server)
        self._tell_serve()

    def _popen(self, server: socket.socket) -> None:
        self._ready = False
        self._process = fork_server(server, self.cache_dir)  # from a warm zygote, if one is named
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                SERVER_MODULE,
                str(server.fileno()),
                *([str(self.cache_dir)] if self.cache_dir is not None else []),
            ],
            pass_fds=(server.fileno(),),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, which cancels
        )

    def _tell_serve(self) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(SERVE_LINE + "\n")
            process.stdin.close()
        except OSError:  # it died already: wait_ready() says how
            pass

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Wait until the worker serves; stop it and raise DbtWorkerError if it does not."""
        if self._ready:
            return
        process = self._process
        assert process is not None and process.stdout is not None, "launch() first"
        deadline = time.monotonic() + timeout
        output: deque[str] = deque(maxlen=20)
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.strip() == READY_LINE:
                self._ready = True
                return
            if line.strip():
                output.append(line.rstrip())
            if not line and process.poll() is not None:
                break
        code = process.poll()
        how = _how_it_ended(code) if code is not None else "did not say it was ready"
        self.stop()
        said = ("\nIts last output:\n" + "\n".join(output)) if output else ""
        self._failure = (
            f"The pytest-dbt-assets dbt worker (pid {process.pid}, {_started_as(process)}) "
            f"did not start: it {how}.{said}\n{SUBPROCESS_HINT[0].upper()}{SUBPROCESS_HINT[1:]}."
        )
        raise DbtWorkerError(self._failure)

    def start(self, timeout: float = 600.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def ensure_running(self) -> str | None:
        """Before a call: restart a worker that died, once per session.

        Returns None when it is alive, else what happened, for a warning. Raises
        DbtWorkerError when it died a second time (or cannot be restarted).
        """
        if self._failure is not None:
            raise DbtWorkerError(self._failure)
        process = self._process
        if process is None or process.poll() is None:
            return None
        self._note_death()
        if len(self.deaths) > 1:
            self._failure = (
                f"{self.deaths[-1]} This is its second death in this session (the first: {self.deaths[0]}), "
                f"so it is not restarted again. {SUBPROCESS_HINT[0].upper()}{SUBPROCESS_HINT[1:]}; "
                "check the machine's free memory."
            )
            raise DbtWorkerError(self._failure)
        for conn in self._prepared.values():
            conn.close()
        self._prepared.clear()
        self._start_process()
        for project_dir, request in self._prepare_requests.items():
            self._send_prepare(project_dir, request)
        self.wait_ready()
        return (
            f"{self.deaths[-1]} It was restarted (new pid {self.pid}); a second death fails the session's "
            f"materializations. {SUBPROCESS_HINT[0].upper()}{SUBPROCESS_HINT[1:]}."
        )

    def death_during_call(self) -> str | None:
        """After a call: what happened if the worker died during it, else None."""
        process = self._process
        if process is None or process.poll() is None:
            return None
        return (
            f"{self._note_death()} dbt's commands in this materialization lost their worker; "
            "the next materialization restarts it."
        )

    def _note_death(self) -> str:
        """Describe the death of the current process, counted once however often asked."""
        process = self._process
        assert process is not None and process.returncode is not None
        if self._death_counted != process.pid:
            self._death_counted = process.pid
            text = f"The pytest-dbt-assets dbt worker (pid {process.pid}) {_how_it_ended(process.returncode)}."
            said = _read_available(process) if process.returncode > 0 else ""  # a signal leaves no last words
            self.deaths.append(f"{text[:-1]}; its last output: {said}." if said else text)
        return self.deaths[-1]

    def prepare_build(self, project: DbtProjectDirs) -> None:
        """Ask the worker to parse ``project`` now, as for the plain ``dbt build`` that
        dagster-dbt's ``DbtCliResource.cli`` sends, so the first real command finds the
        manifest ready. Does not wait: the worker answers requests in order. Like dagster-dbt,
        the folders are set explicitly, so the user's ``DBT_*`` variables cannot redirect it.
        With a ``seed``, the worker's parse starts from the plugin's start-up parse."""
        if project.project_dir in self._prepared:
            return
        scratch = str(project.target_dir / "dbt_assets_prepare")
        with dbt_environment():
            environ = dict(os.environ)
        env = {
            **environ,
            "DBT_PROFILES_DIR": str(project.profiles_dir.resolve()),
            "DBT_PROJECT_DIR": str(project.project_dir.resolve()),
            "DBT_TARGET_PATH": scratch,
            "DBT_LOG_PATH": scratch,
        }
        request = {
            "argv": ["build", "--profile", project.profile_name, "--target", project.target_name],
            "env": env,
            "cwd": str(project.project_dir.resolve()),
            "prepare": True,
            "seed": [str(self.seed[0]), self.seed[1]] if self.seed is not None else None,
        }
        self._prepare_requests[project.project_dir] = request
        self._send_prepare(project.project_dir, request)

    def _send_prepare(self, project_dir: Path, request: dict[str, Any]) -> None:
        try:
            with socket_in(self.folder) as conn:
                conn.sendall(json.dumps(request).encode() + b"\n")
                self._prepared[project_dir] = conn.dup()
        except OSError:  # the worker is gone: wait_ready() or ensure_running() says so
            return

    def stop(self) -> None:
        for conn in self._prepared.values():
            conn.close()
        self._prepared.clear()
        if self._unbound is not None:
            self._unbound.close()
            self._unbound = None
        process, self._process = self._process, None
        if process is not None and process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()  # a spawned worker that never served: end of input ends it
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self.launched:
            shutil.rmtree(self.folder, ignore_errors=True)


def _started_as(process: subprocess.Popen[str] | ForkedServer) -> str:
    if isinstance(process, ForkedServer):
        return f"forked by the zygote {os.environ.get(ZYGOTE_ENV)}"
    return f"`{sys.executable} -m {SERVER_MODULE}`"


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}" + (f", {_OOM_HINT}" if name == "SIGKILL" else "")
    return f"exited with code {returncode}"


def _read_available(process: subprocess.Popen[str] | ForkedServer) -> str:
    """The last line a dead worker printed (e.g. a Python error), without waiting."""
    if process.stdout is None or process.stdout.closed:
        return ""
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace")
    # multiprocessing's resource tracker (dbt's locks start it) shares the pipe and warns last.
    lines = [line.strip() for line in text.splitlines() if line.strip() and "resource_tracker" not in line]
    return lines[-1] if lines else ""


def remove_stale_folders(basetemp: Path) -> list[Path]:
    """Remove worker folders that earlier sessions left when they were killed (SIGKILL).

    Looks in pytest's per-user temporary root (``pytest-of-<user>``, the ancestor of the
    default basetemp: each ``pytest-N`` folder, and the ``popen-gwN`` folders of xdist
    workers) for folders whose ``owner`` process no longer runs. With a ``--basetemp`` of the
    user's choice there is no such root: pytest empties that folder itself at start.
    """
    root = next((folder for folder in (basetemp, *basetemp.parents) if folder.name.startswith("pytest-of-")), None)
    if root is None:
        return []
    return remove_abandoned(
        folder
        for pattern in (f"pytest-*/{FOLDER_PREFIX}*", f"pytest-*/popen-gw*/{FOLDER_PREFIX}*")
        for folder in root.glob(pattern)
    )
