"""The worker's own process: a fork server with dbt imported that answers the ``dbt`` client.

Started by :class:`~pytest_dbt_assets.dbt.worker.DbtWorker` as ``python -m
pytest_dbt_assets.dbt.server <socket fd> [<cache dir>]`` on a socket pytest binds, at the
latest, before it says ``serve`` on the worker's stdin. It keeps
the parsed manifest of each distinct set of project, profile, target, vars and environment
(:mod:`.partial_parse`); for each request it forks a child that runs dbt as the ``dbt``
command would (given the parsed manifest, as dbt's programmatic API allows, so nothing is
parsed again), with the socket as its stdout, and then sends the exit code.

One invocation runs at a time; each runs in its own forked child, so dbt's global state and
DuckDB handles die with it. Ctrl-C (or the client going away) interrupts the child.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import selectors
import signal
import socket
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat import dbt as dbt_compat
from pytest_dbt_assets.dbt.client import EXIT_MARKER, READY_LINE, SERVE_LINE
from pytest_dbt_assets.dbt.partial_parse import parse_args_of, parse_in_server, parse_key
from pytest_dbt_assets.dbt.runner import release_duckdb
from pytest_dbt_assets.owner import owner_alive
from pytest_dbt_assets.warehouse.snowflake import FOLDER_ENV, emulating_for_dbt, warm_emulator_imports


def serve(server_fd: int, cache_dir: Path | None, owner: str | None = None) -> None:
    """The worker's main loop on the listening socket ``server_fd`` (bound by pytest): one
    request at a time, each in a forked child. Partial-parse files are kept in ``cache_dir``.
    dbt is imported first; serving starts once stdin says so, and never if it closes first.
    Ends when the pytest that started it is gone, or the ``owner`` pytest that asked the
    zygote (:mod:`.zygote`) for it (its :func:`~pytest_dbt_assets.owner.process_identity`)."""
    parent = os.getppid()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    dbt_compat.warm_dbt_imports()
    print(READY_LINE, flush=True)
    # pytest may start this process before it knows a test needs it (the imports then overlap
    # its own start-up): SERVE_LINE on stdin once the socket listens; end of input, not needed.
    if sys.stdin.readline().strip() != SERVE_LINE:
        return
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    server = socket.socket(fileno=server_fd)
    manifests: dict[str, Any] = {}
    seeds: dict[str, tuple[Path, str]] = {}  # project folder -> the plugin's start-up parse of it
    pending: deque[Any] = deque()  # macros whose templates are not compiled yet
    # The kernel's death signal is the fast way out; the parent check is the sure one (a pytest
    # killed before the signal was asked for, or a signal that never came on a loaded machine
    # left a worker running in the full suite).
    while os.getppid() == parent and (owner is None or owner_alive(owner)):
        _compile_macro_templates(pending, server)
        if not select.select([server], [], [], 1.0)[0]:
            continue
        conn, _ = server.accept()
        with conn:
            _serve_one(server, conn, manifests, cache_dir, pending, seeds)


def _serve_one(
    server: socket.socket,
    conn: socket.socket,
    manifests: dict[str, Any],
    cache_dir: Path | None,
    pending: deque[Any],
    seeds: dict[str, tuple[Path, str]],
) -> None:
    reader = conn.makefile("rb")
    line = reader.readline()
    if not line:
        return
    request = json.loads(line)
    if request.get("seed"):  # the plugin's prepare request says where its start-up parse is cached
        folder, seed_key = request["seed"]
        seeds[request["cwd"]] = (Path(folder), seed_key)
    manifest = None
    parse_args = parse_args_of(request["argv"])
    if parse_args is not None:
        key = parse_key(request, parse_args)
        if key not in manifests:
            manifests[key] = parse_in_server(request, parse_args, cache_dir, seeds.get(request["cwd"]))
            if manifests[key] is not None:
                pending.extend(manifests[key].macros.values())
        manifest = manifests[key]
    if request.get("prepare"):
        conn.sendall(EXIT_MARKER + b"0\n")
        return
    if FOLDER_ENV in request["env"]:
        warm_emulator_imports()  # once, here: every child of a Snowflake project needs them
    # Objects alive now are the warm state every child shares: keep the collector from
    # touching them, so a child's collections do not copy those pages.
    gc.freeze()
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        server.close()  # only the worker listens: once it is gone, clients are refused at once
        _run_child(conn, request, manifest, server_pid)
    selector = selectors.DefaultSelector()
    selector.register(conn, selectors.EVENT_READ)
    # The child's end wakes the wait at once where the kernel gives a pidfd (Linux 5.3+), so
    # the client hears the exit code without waiting out a poll; elsewhere, polled.
    child_end = pidfd(pid)
    if child_end is not None:
        selector.register(child_end, selectors.EVENT_READ)
    interrupted_at: float | None = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if interrupted_at is None:
            ready = selector.select(timeout=0.05 if child_end is None else 1.0)
            if any(key.fileobj is conn for key, _ in ready):
                # The client asked to cancel (Ctrl-C) or went away: interrupt dbt.
                os.kill(pid, signal.SIGINT)
                interrupted_at = time.monotonic()
        else:
            if time.monotonic() - interrupted_at > 10:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
    selector.close()
    if child_end is not None:
        os.close(child_end)
    try:
        conn.sendall(EXIT_MARKER + str(code if code >= 0 else 128 - code).encode() + b"\n")
    except OSError:
        pass


def pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when process ``pid`` ends; None where the
    platform or kernel has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _compile_macro_templates(pending: deque[Any], server: socket.socket) -> None:
    """While no request waits, fill dbt's Jinja template cache with the ``pending`` macros.

    dbt compiles a macro's template the first time a command calls it and caches it by its
    text, with no context: the same work in every child. Done here between requests, each
    later child inherits the compiled templates (about 0.2 s of a 5-model build); a child
    forked before the end compiles the rest itself, as dbt would.
    """
    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        while pending and not selector.select(timeout=0):
            for _ in range(min(20, len(pending))):
                try:
                    dbt_compat.compile_macro_template(pending.popleft())
                except Exception:  # noqa: BLE001, S112 - the child compiles it and reports dbt's error
                    continue


def _run_with_manifest(argv: list[str], manifest: Any) -> int:
    """Run ``dbt <argv>`` with an already parsed manifest; dbt's CLI exit codes."""
    # dbt is imported inside functions: the pytest process imports this module for its
    # constants (worker.py), and dbt costs seconds to import; the server imports it early itself.
    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest).invoke(list(argv))
    # dbt writes manifest.json after parsing, and these commands again when they finish; one
    # that stopped early (a selection error) wrote none: keep the artifact where users expect it.
    target_path = os.environ.get("DBT_TARGET_PATH")
    if target_path and not os.path.exists(os.path.join(target_path, "manifest.json")):
        os.makedirs(target_path, exist_ok=True)
        dbt_compat.write_manifest(manifest, target_path)
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def _run_child(conn: socket.socket, request: dict[str, Any], manifest: Any, server_pid: int) -> None:
    """In the forked child: become the `dbt` command of the request. Never returns."""
    code = 1
    try:
        # A worker killed mid-command (the OOM killer) takes its dbt along, so the client
        # sees the connection end at once and nothing runs on unwatched.
        die_with_parent(signal.SIGKILL)
        if os.getppid() != server_pid:
            os._exit(1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.dup2(conn.fileno(), 1)
        os.dup2(conn.fileno(), 2)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from dbt.cli.main import cli

        try:
            with emulating_for_dbt(os.environ):
                if manifest is not None:
                    code = _run_with_manifest(request["argv"], manifest)
                else:
                    cli.main(args=list(request["argv"]), prog_name="dbt", standalone_mode=True)
                    code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except KeyboardInterrupt:
            code = 130
    except BaseException:  # noqa: BLE001 - report and exit like a crashed dbt would
        traceback.print_exc()
        code = 1
    finally:
        try:
            release_duckdb()  # close the file cleanly: os._exit runs no destructors
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies, however it dies."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signum)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
