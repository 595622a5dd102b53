"""The ``dbt`` that dagster-dbt starts when the warm worker runs dbt: it hands its argv,
environment and working folder to the worker over a Unix socket, copies dbt's output to its
stdout and exits with dbt's exit code.

It runs as ``python -IS`` (no site-packages, nothing from the environment), loaded by path
from the small executable :func:`client_script` writes, so it uses the standard library only
and imports nothing from the package. The worker's server imports its protocol constants.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from types import FrameType
from typing import NoReturn

# After dbt's output, the server sends this marker, the exit code and a newline.
EXIT_MARKER = b"\x00\x00dbt-assets-exit:"
SOCKET_NAME = "s"  # the socket's file in the worker's folder
# The server's lines to pytest on its stdout (ready: dbt is imported), pytest's on its stdin.
READY_LINE = "dbt-assets-worker ready"
SERVE_LINE = "serve"


def client_script(python: str, client: str, folder: str) -> str:
    """The executable's text: ``python -IS`` runs this file by path for the worker in ``folder``."""
    return (
        f"#!{python} -IS\n"
        f'"""dbt, answered by the pytest-dbt-assets worker listening in {folder!r}."""\n'
        "import sys\n\n"
        f"CLIENT = {client!r}\n"
        "client = {'__name__': 'pytest_dbt_assets_client', '__file__': CLIENT}\n"
        "with open(CLIENT, encoding='utf-8') as source:\n"
        "    exec(compile(source.read(), CLIENT, 'exec'), client)\n"
        f"client['main']({folder!r}, sys.argv[1:])\n"
    )


def fail(reason: str, argv: list[str]) -> NoReturn:
    """Exit with one line, where dagster-dbt shows it: dbt's JSON log format puts it among
    dbt's errors."""
    line = "pytest-dbt-assets: " + reason
    if os.environ.get("DBT_LOG_FORMAT", "").lower() == "json" or "json" in argv:
        info = {"name": "MainEncounteredError", "level": "error", "msg": line, "code": "Z002"}
        sys.stdout.write(json.dumps({"info": info, "data": {"exc": line}}) + "\n")
        sys.stdout.flush()
    else:
        sys.stderr.write(line + "\n")
    sys.exit(2)


def connect(folder: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    if os.path.isdir("/proc/self/fd"):  # the folder's path may be too long for a socket address
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.connect(f"/proc/self/fd/{folder_fd}/{SOCKET_NAME}")
        finally:
            os.close(folder_fd)
    else:
        sock.connect(os.path.join(folder, SOCKET_NAME))
    return sock


def main(folder: str, argv: list[str]) -> NoReturn:
    """Run ``dbt <argv>`` on the worker listening in ``folder``; exit with dbt's code."""
    try:
        sock = connect(folder)
    except OSError as error:
        fail(
            f"cannot reach the dbt worker in {folder} ({type(error).__name__}: {error}): it is not running "
            "(killed or crashed); the plugin restarts it before the next materialization",
            argv,
        )
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    sock.sendall(json.dumps(request).encode() + b"\n")

    def cancel(signum: int, frame: FrameType | None) -> None:
        try:
            sock.sendall(b"cancel\n")
        except OSError:
            pass

    signal.signal(signal.SIGINT, cancel)
    signal.signal(signal.SIGTERM, cancel)
    out = sys.stdout.buffer
    pending = b""
    keep = len(EXIT_MARKER) + 12
    while True:
        try:
            chunk = sock.recv(65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        at = pending.find(EXIT_MARKER)
        if at >= 0:
            out.write(pending[:at])
            out.flush()
            code = pending[at + len(EXIT_MARKER) :].split(b"\n")[0]
            sys.exit(int(code or 1))
        if len(pending) > keep:
            out.write(pending[:-keep])
            out.flush()
            pending = pending[-keep:]
    out.write(pending)
    out.flush()
    fail(
        "the dbt worker went away before dbt finished (it was killed or crashed, e.g. by the "
        "out-of-memory killer); the plugin restarts it before the next materialization",
        argv,
    )
