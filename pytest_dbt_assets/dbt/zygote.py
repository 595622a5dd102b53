"""A warm process that dbt workers are forked from, so that a worker need not import dbt itself.

A worker's own process (:mod:`.server`) spends most of its CPU importing dbt, about 1.7 s
here, once per pytest session. A process that runs many sessions (pytest's own test suite
with ``pytester``, or the controller of xdist workers) starts one :class:`Zygote`, which
names its socket in :data:`ZYGOTE_ENV`.
:func:`fork_server` then asks it for each worker: the zygote forks a child that becomes the
worker's server, with the socket, stdin and stdout pytest would have given a process it
started, and the environment and folder of the pytest that asked. The child is watched as a
process pytest started is: :class:`ForkedServer` answers what :class:`subprocess.Popen` does.

Anything that goes wrong on the way (no zygote, another Python, a zygote that is gone) makes
:func:`fork_server` return None, and the worker is started as its own process.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from pytest_dbt_assets.dbt.sockets import bind_in, socket_in
from pytest_dbt_assets.errors import DbtWorkerError
from pytest_dbt_assets.owner import make_temp_folder, process_identity
from pytest_dbt_assets.warehouse.snowflake import FOLDER_ENV, warm_emulator_imports

ZYGOTE_ENV = "PYTEST_DBT_ASSETS_DBT_ZYGOTE"  # the folder of the zygote's socket
_WARM = "warm"  # the zygote's last argument with warm_runtime, else ""
_REPLY_TIMEOUT = 600.0  # the zygote answers once it has imported dbt: seconds on a loaded machine


class ForkedServer:
    """A worker's server forked by the zygote, watched as :class:`subprocess.Popen` watches
    a child: the zygote, its parent, says on ``conn`` how it ended."""

    def __init__(self, conn: socket.socket, pid: int, stdin: IO[str], stdout: IO[str]) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.returncode: int | None = None
        self._conn = conn
        self._said = b""

    def poll(self) -> int | None:
        if self.returncode is None and self._readable(0):
            self._read()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._readable(timeout):
                raise subprocess.TimeoutExpired(f"dbt worker {self.pid}", timeout or 0)
            self._read()
        return self.returncode if self.returncode is not None else self.wait(timeout)

    def _readable(self, timeout: float | None) -> bool:
        # A selector, not select.select: pytest may hold more than 1024 file descriptors.
        with selectors.DefaultSelector() as selector:
            selector.register(self._conn, selectors.EVENT_READ)
            return bool(selector.select(timeout))

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _read(self) -> None:
        chunk = self._conn.recv(4096)
        self._said += chunk
        if b"\n" in self._said:
            self.returncode = int(self._said.split(b"\n", 1)[0].removeprefix(b"exit "))
        elif not chunk:  # the zygote went away, and with it its children (they die with it)
            self.returncode = -signal.SIGKILL
        if self.returncode is not None:
            self._conn.close()


def fork_server(server: socket.socket, cache_dir: Path | None) -> ForkedServer | None:
    """A worker's server forked by the zygote :data:`ZYGOTE_ENV` names, serving on ``server``;
    None when there is no such zygote for this Python (start the server as a process then)."""
    folder = os.environ.get(ZYGOTE_ENV)
    if not folder:
        return None
    conn = socket.socket(socket.AF_UNIX)
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    try:
        bind_in(conn, Path(folder), bind=False)
        request = {
            "python": sys.executable,
            "namespaces": _namespaces(),
            "umask": _umask(),
            "cache_dir": str(cache_dir) if cache_dir is not None else None,
            "owner": process_identity(os.getpid()),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [server.fileno(), stdin_read, stdout_write])
        conn.settimeout(_REPLY_TIMEOUT)
        reply = b""
        while not reply.endswith(b"\n") and (byte := conn.recv(1)):  # no further: "exit" comes later
            reply += byte
        conn.settimeout(None)
    except (OSError, DbtWorkerError):
        reply = b""
    finally:
        os.close(stdin_read)
        os.close(stdout_write)
    if not reply.startswith(b"pid "):
        conn.close()
        os.close(stdin_write)
        os.close(stdout_read)
        return None
    return ForkedServer(
        conn, int(reply[4:]), os.fdopen(stdin_write, "w"), os.fdopen(stdout_read, "r", errors="replace")
    )


def _namespaces() -> dict[str, int | None]:
    """The Linux namespaces this process lives in (mounts, users, processes, network), by inode;
    None for one that cannot be read (elsewhere than Linux: all None)."""
    inodes: dict[str, int | None] = {}
    for name in ("mnt", "user", "pid", "net"):
        try:
            inodes[name] = os.stat(f"/proc/self/ns/{name}").st_ino
        except OSError:
            inodes[name] = None
    return inodes


def _umask() -> int | None:
    """This process's umask, read without setting it (other threads may be creating files);
    None where the kernel does not tell (the server keeps the zygote's)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    return next((int(line.split()[1], 8) for line in status.splitlines() if line.startswith("Umask:")), None)


class Zygote:
    """A zygote started by this process, named in :data:`ZYGOTE_ENV` until :meth:`stop`.

    Its socket is in a private folder of the system's temp folder, which a later session
    removes if this one is killed. Requests made at once wait while it imports dbt. It ends
    with this process, or at :meth:`stop`.

    ``warm_runtime``: the zygote also builds a throwaway project (:mod:`.warmup`) before it
    forks: about 3.7 s of CPU once, which saves each server about a second and each dbt
    command a few tenths. That pays for a process that forks servers for many sessions
    (pytest's own suite); xdist's controller forks one a worker, and was slower with it
    (example_project at ``-n 2``: 1.5-2 s of wall time and 4-7 s of CPU more).

    Raises:
        OSError, DbtWorkerError: the socket cannot be made.
    """

    def __init__(self, *, warm_runtime: bool = False) -> None:
        self.folder = make_temp_folder()
        try:
            with socket_in(self.folder, bind=True) as listener:
                listener.listen(64)
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        __name__,
                        str(listener.fileno()),
                        str(self.folder),
                        _WARM if warm_runtime else "",
                    ],
                    pass_fds=(listener.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C in the terminal goes to pytest
                )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._saved = os.environ.get(ZYGOTE_ENV)
        os.environ[ZYGOTE_ENV] = str(self.folder)

    def stop(self) -> None:
        """End the zygote (servers forked from it end with it), and name the one before again."""
        if self._saved is None:
            os.environ.pop(ZYGOTE_ENV, None)
        else:
            os.environ[ZYGOTE_ENV] = self._saved
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def serve_forks(listener_fd: int, folder: Path, warm_runtime: bool) -> None:
    """The zygote's main loop on the listening socket ``listener_fd``: import dbt (and with
    ``warm_runtime``, build a throwaway project in ``folder``: :mod:`.warmup`), then fork a
    server for each request. Ends with the process that started it."""
    # Imported here: the pytest side imports this module for fork_server, and the server
    # module imports dbt's compat shims.
    from pytest_dbt_assets.compat import dbt as dbt_compat
    from pytest_dbt_assets.dbt import server
    from pytest_dbt_assets.dbt.warmup import warm_dbt_runtime

    parent = os.getppid()
    server.die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(fileno=listener_fd)
    dbt_compat.warm_dbt_imports()
    if warm_runtime:
        warm_dbt_runtime(folder)
    # What is alive now is what every server shares: keep the collector of a server from
    # touching it, so that its collections do not copy those pages.
    gc.collect()
    gc.freeze()
    children: dict[int, socket.socket] = {}
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        while os.getppid() == parent:
            for key, _ in selector.select(timeout=0.2):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    try:
                        _fork_one(conn, listener, children, selector)
                    except OSError:  # the asking pytest went away: it starts no worker now
                        conn.close()
                else:  # a child's pidfd: it ended, say so at once (else the sweep below does)
                    selector.unregister(key.fileobj)
                    os.close(key.fd)
            for pid, conn in list(children.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    with contextlib.suppress(OSError):
                        conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                    conn.close()
                    del children[pid]


def _fork_one(
    conn: socket.socket, listener: socket.socket, children: dict[int, socket.socket], selector: selectors.BaseSelector
) -> None:
    from pytest_dbt_assets.dbt import server  # imported by serve_forks already: see there

    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    try:
        request = json.loads(message)
    except ValueError:
        request = {}
    # A server forked here lives in this process's namespaces: a pytest in another (a read-only
    # mount of the tree made with `unshare -m`, a container) starts its own.
    if request.get("python") != sys.executable or request.get("namespaces") != _namespaces() or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    if FOLDER_ENV in request["env"]:  # a Snowflake project's: every later server inherits them
        with contextlib.suppress(ImportError):  # the server reports it, as without a zygote
            warm_emulator_imports()
            gc.freeze()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        for key in list(selector.get_map().values()):
            if key.fileobj is not listener:
                os.close(key.fd)  # the pidfds of the other servers
        selector.close()
        listener.close()
        for other in children.values():
            other.close()
        conn.close()
        _become_server(request, *fds)
    for fd in fds:
        os.close(fd)
    children[pid] = conn  # reaped even if the asking pytest is gone before it hears the pid
    if (child_end := server.pidfd(pid)) is not None:  # else (before Linux 5.3) swept
        selector.register(child_end, selectors.EVENT_READ)
    conn.sendall(f"pid {pid}\n".encode())


def _become_server(request: dict[str, Any], server_fd: int, stdin_fd: int, stdout_fd: int) -> None:
    """In the forked child: the worker's server, as if the asking pytest had started it. Never
    returns."""
    from pytest_dbt_assets.dbt import server

    code = 0
    try:
        os.setsid()  # as a started server: its own session, away from the terminal's Ctrl-C
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stdout_fd, 2)
        os.close(stdin_fd)
        os.close(stdout_fd)
        if request["umask"] is not None:
            os.umask(request["umask"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        cache_dir = request["cache_dir"]
        server.serve(server_fd, Path(cache_dir) if cache_dir else None, owner=request["owner"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    except BaseException:  # noqa: BLE001 - report and exit as a started server would
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve_forks(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == _WARM)
