"""A warm dbt for dagster-dbt: a long-lived process that dagster-dbt reaches through its
``dbt_executable``.

dagster-dbt runs every ``dbt.cli(...)`` as a subprocess and reads dbt's JSON log lines from
its stdout. Starting that subprocess costs seconds (Python, dbt and adapter imports, then a
parse). Here the executable is a tiny client script (standard library only, started with
``-IS``) that hands its argv, environment and working folder to a server over a Unix
socket. The server has dbt imported and keeps the parsed manifest of each distinct set of
project, profile, target, vars and environment; for each request it forks a child that runs
dbt as the ``dbt`` command would (given the parsed manifest, as dbt's programmatic API
allows, so nothing is parsed again), with the socket as its stdout, and then sends the exit
code. dagster-dbt still sees a process that prints dbt's own JSON lines
and exits with dbt's code, so its events, metadata and check results are unchanged.

One invocation runs at a time; each runs in its own forked child, so dbt's global state and
DuckDB handles die with it. Ctrl-C (or the client going away) interrupts the child.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.cache import (
    PLACEHOLDER,
    env_vars_read,
    fingerprint,
    locked,
    prune,
    read_partial_parse,
    write_partial_parse,
)
from pytest_dbt_assets.errors import DbtWorkerError
from pytest_dbt_assets.project import dbt_environment, release_duckdb

if TYPE_CHECKING:
    from pytest_dbt_assets.project import DbtAssetsProject

EXIT_MARKER = b"\x00\x00dbt-assets-exit:"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's name, in the target folder
CACHE_NOTE = "partial_parse.from_cache.txt"  # beside a partial-parse file restored from the cache
READY_LINE = "dbt-assets-worker ready"

SOCKET_NAME = "s"
CLIENT_NAME = "dbt"
OWNER_FILE = "owner"  # "<pid> <start time>" of the pytest process that made the folder
FOLDER_PREFIX = "dbt_assets_worker"
# Unix socket paths hold at most 107 bytes on Linux, 103 on macOS; basetemps can be longer.
_MAX_SOCKET_PATH = 100
_OOM_HINT = "as the out-of-memory killer does (`dmesg` or `journalctl -k` shows 'Out of memory: Killed process')"
_SUBPROCESS_HINT = "--dbt-assets-runner=subprocess (ini: dbt_assets_runner = subprocess) runs dbt without the worker"

CLIENT_TEMPLATE = """#!{python} -IS
\"\"\"dbt, answered by the pytest-dbt-assets worker listening in {folder!r}.\"\"\"
import json, os, signal, socket, sys

FOLDER = {folder!r}
MARKER = {marker!r}


def fail(reason):
    # One line, where dagster-dbt shows it: dbt's JSON log format puts it among dbt's errors.
    line = "pytest-dbt-assets: " + reason
    if os.environ.get("DBT_LOG_FORMAT", "").lower() == "json" or "json" in sys.argv:
        info = {{"name": "MainEncounteredError", "level": "error", "msg": line, "code": "Z002"}}
        sys.stdout.write(json.dumps({{"info": info, "data": {{"exc": line}}}}) + "\\n")
        sys.stdout.flush()
    else:
        sys.stderr.write(line + "\\n")
    sys.exit(2)


def connect():
    sock = socket.socket(socket.AF_UNIX)
    if os.path.isdir("/proc/self/fd"):  # the folder's path may be too long for a socket address
        folder = os.open(FOLDER, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.connect("/proc/self/fd/%d/{socket_name}" % folder)
        finally:
            os.close(folder)
    else:
        sock.connect(os.path.join(FOLDER, {socket_name!r}))
    return sock


try:
    sock = connect()
except OSError as error:
    fail(
        "cannot reach the dbt worker in %s (%s: %s): it is not running (killed or crashed); "
        "the plugin restarts it before the next materialization" % (FOLDER, type(error).__name__, error)
    )
request = {{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}
sock.sendall(json.dumps(request).encode() + b"\\n")


def cancel(signum, frame):
    try:
        sock.sendall(b"cancel\\n")
    except OSError:
        pass


signal.signal(signal.SIGINT, cancel)
signal.signal(signal.SIGTERM, cancel)
out = sys.stdout.buffer
pending = b""
keep = len(MARKER) + 12
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
    at = pending.find(MARKER)
    if at >= 0:
        out.write(pending[:at])
        out.flush()
        code = pending[at + len(MARKER):].split(b"\\n")[0]
        sys.exit(int(code or 1))
    if len(pending) > keep:
        out.write(pending[:-keep])
        out.flush()
        pending = pending[-keep:]
out.write(pending)
out.flush()
fail(
    "the dbt worker went away before dbt finished (it was killed or crashed, e.g. by the "
    "out-of-memory killer); the plugin restarts it before the next materialization"
)
"""


class DbtWorker:
    """Starts, watches and stops the worker process; ``executable`` goes into ``DbtCliResource``.

    Everything it creates lives in ``folder`` (under pytest's basetemp): the client script
    ``dbt``, the socket and an ``owner`` file naming the pytest process, so a later session
    can remove the folder of one that was killed (:func:`remove_stale_folders`).

    ``launch()`` returns at once: the socket is bound here and handed to the worker, so
    requests (``prepare_build``, dbt commands) queue up while it is still importing dbt.
    ``wait_ready()`` tells whether it started. A worker that dies is restarted once by
    :meth:`ensure_running`, on the same socket and client script.
    """

    def __init__(self, folder: Path, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.folder = folder
        self.executable = folder / CLIENT_NAME
        self.deaths: list[str] = []  # how each worker process of the session died
        self._process: subprocess.Popen[str] | None = None
        self._ready = False
        self._prepared: dict[Path, socket.socket] = {}
        self._prepare_requests: dict[Path, dict[str, Any]] = {}
        self._death_counted: int | None = None  # pid of the last process whose death is in `deaths`
        self._failure: str | None = None  # why the worker cannot serve any more

    @property
    def pid(self) -> int | None:
        """The worker process's id (None before ``launch()`` and after ``stop()``)."""
        return self._process.pid if self._process is not None else None

    def launch(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / OWNER_FILE).write_text(_process_identity(os.getpid()) + "\n", encoding="utf-8")
        self.executable.write_text(
            CLIENT_TEMPLATE.format(
                python=sys.executable, folder=str(self.folder), socket_name=SOCKET_NAME, marker=EXIT_MARKER
            ),
            encoding="utf-8",
        )
        self.executable.chmod(0o755)
        self._start_process()

    def _start_process(self) -> None:
        self._ready = False
        with contextlib.suppress(FileNotFoundError):
            (self.folder / SOCKET_NAME).unlink()  # left by a worker that died
        with _socket_in(self.folder, bind=True) as server:
            server.listen(16)
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_dbt_assets.dbt_worker",
                    str(server.fileno()),
                    *([str(self.cache_dir)] if self.cache_dir is not None else []),
                ],
                pass_fds=(server.fileno(),),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, which cancels
            )

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
        how = _how_it_ended(process.returncode) if process.poll() is not None else "did not say it was ready"
        self.stop()
        said = ("\nIts last output:\n" + "\n".join(output)) if output else ""
        self._failure = (
            f"The pytest-dbt-assets dbt worker (pid {process.pid}, `{sys.executable} -m pytest_dbt_assets.dbt_worker`) "
            f"did not start: it {how}.{said}\n{_SUBPROCESS_HINT[0].upper()}{_SUBPROCESS_HINT[1:]}."
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
                f"so it is not restarted again. {_SUBPROCESS_HINT[0].upper()}{_SUBPROCESS_HINT[1:]}; "
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
            f"materializations. {_SUBPROCESS_HINT[0].upper()}{_SUBPROCESS_HINT[1:]}."
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

    def prepare_build(self, project: DbtAssetsProject) -> None:
        """Ask the worker to parse ``project`` now, as for the plain ``dbt build`` that
        dagster-dbt's ``DbtCliResource.cli`` sends, so the first real command finds the
        manifest ready. Does not wait: the worker answers requests in order. Like dagster-dbt,
        the folders are set explicitly, so the user's ``DBT_*`` variables cannot redirect it."""
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
        }
        self._prepare_requests[project.project_dir] = request
        self._send_prepare(project.project_dir, request)

    def _send_prepare(self, project_dir: Path, request: dict[str, Any]) -> None:
        try:
            with _socket_in(self.folder) as conn:
                conn.sendall(json.dumps(request).encode() + b"\n")
                self._prepared[project_dir] = conn.dup()
        except OSError:  # the worker is gone: wait_ready() or ensure_running() says so
            return

    def stop(self) -> None:
        for conn in self._prepared.values():
            conn.close()
        self._prepared.clear()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def _socket_in(folder: Path, *, bind: bool = False) -> Iterator[socket.socket]:
    """A Unix socket bound to (or connected to) ``folder/s``, whatever the folder's length.

    On Linux the address goes through ``/proc/self/fd/<folder fd>/s``, a short path that
    the kernel resolves to the socket file in the folder; elsewhere the plain path is used
    when it fits.
    """
    sock = socket.socket(socket.AF_UNIX)
    try:
        if Path("/proc/self/fd").is_dir():
            folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                _bind_or_connect(sock, f"/proc/self/fd/{folder_fd}/{SOCKET_NAME}", bind)
            finally:
                os.close(folder_fd)
        else:
            address = str(folder / SOCKET_NAME)
            if len(os.fsencode(address)) > _MAX_SOCKET_PATH:
                raise DbtWorkerError(
                    f"The dbt worker's socket path {address} is longer than a Unix socket address "
                    f"allows ({_MAX_SOCKET_PATH} bytes). Pass a shorter --basetemp, or "
                    f"{_SUBPROCESS_HINT}."
                )
            _bind_or_connect(sock, address, bind)
        yield sock
    finally:
        sock.close()


def _bind_or_connect(sock: socket.socket, address: str, bind: bool) -> None:
    if bind:
        sock.bind(address)
    else:
        sock.connect(address)


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}" + (f", {_OOM_HINT}" if name == "SIGKILL" else "")
    return f"exited with code {returncode}"


def _read_available(process: subprocess.Popen[str]) -> str:
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


def _process_identity(pid: int) -> str:
    """``"<pid> <start time>"``: tells a live process from a later one given the same pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        return f"{pid} ?"


def _owner_alive(identity: str) -> bool:
    pid_text, _, start = identity.strip().partition(" ")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True  # not ours to judge: leave it
    return start in {"?", ""} or _process_identity(pid) == identity.strip()


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
    removed = []
    for pattern in (f"pytest-*/{FOLDER_PREFIX}*", f"pytest-*/popen-gw*/{FOLDER_PREFIX}*"):
        for folder in root.glob(pattern):
            try:
                identity = (folder / OWNER_FILE).read_text(encoding="utf-8")
            except OSError:
                continue  # not a worker folder, or one being made right now
            if not _owner_alive(identity):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def _die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(1, signum)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm_imports() -> None:
    # Everything a `dbt build` on DuckDB imports, loaded once before any fork.
    import agate  # noqa: F401
    import dbt.adapters.duckdb
    import dbt.adapters.duckdb.impl
    import dbt.cli.main
    import dbt.task.build  # noqa: F401
    import duckdb  # noqa: F401


# Commands that load a manifest, and the flags that change what parsing produces.
_MANIFEST_COMMANDS = {"build", "run", "test", "seed", "snapshot", "compile"}
_PARSE_FLAGS = {"--profile", "--target", "--vars", "--project-dir", "--profiles-dir"}
# dbt settings from the environment that do not change what parsing produces.
_NOT_PARSE_ENV = {
    "DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_INDIRECT_SELECTION", "DBT_LOG_FORMAT", "DBT_LOG_LEVEL",
    "DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_PROJECT_DIR", "DBT_USE_COLORS", "DBT_PRINTER_WIDTH", "DBT_QUIET",
}  # fmt: skip


def _parse_args(argv: list[str]) -> list[str] | None:
    """``["parse", <flags that shape the manifest>]`` for a manifest command, else None."""
    if not argv or argv[0] not in _MANIFEST_COMMANDS:
        return None
    args = ["parse"]
    for index, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in _PARSE_FLAGS:
            args += [arg] if "=" in arg else argv[index : index + 2]
    return args


@functools.cache
def _env_vars_read_by(project_dir: str) -> frozenset[str]:
    """Names the project reads with ``env_var()`` (the project folder is a session's copy)."""
    names: set[str] = set()
    for path in Path(project_dir).rglob("*"):
        if path.suffix in {".sql", ".yml", ".yaml", ".py", ".csv", ".md"} and "target" not in path.parts:
            names.update(env_vars_read(path.read_bytes()))
    return frozenset(names)


def _parse_key(request: dict[str, Any], parse_args: list[str]) -> str:
    """What a parse depends on: folder, flags, dbt's own settings and the env vars read."""
    read = _env_vars_read_by(request["cwd"])
    env = {k: v for k, v in request["env"].items() if (k.startswith("DBT_") and k not in _NOT_PARSE_ENV) or k in read}
    return json.dumps([request["cwd"], parse_args, sorted(env.items())])


def _parse_in_server(request: dict[str, Any], parse_args: list[str], cache_dir: Path | None) -> Any:
    """Parse once in the server, as the request would; None when parsing fails (the child
    then runs the command normally and reports dbt's own error).

    With ``cache_dir``, dbt's partial-parse file of an earlier session's identical parse is
    put where dbt looks for it, so dbt only checks the files instead of parsing them; a new
    or refused one is cached after the parse. Cache trouble only means a full parse.
    """
    from dbt.cli.main import dbtRunner

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["DBT_LOG_LEVEL"] = "none"
        os.chdir(request["cwd"])
        target = Path(os.environ.get("DBT_TARGET_PATH") or "target").resolve()
        key = _disk_key(request, parse_args) if cache_dir is not None and _writable(cache_dir) else None
        refused: list[str] = []

        def note_refusal(event: Any) -> None:
            if event.info.name == "UnableToPartialParse":
                refused.append(str(event.info.msg))

        # The lock makes a concurrent worker wait for this parse, then start from its file.
        with locked(cache_dir / f"{key}.lock") if cache_dir and key else contextlib.nullcontext():
            made_in = _restore_partial_parse(cache_dir, key, target) if cache_dir and key else None
            with _profile_path_may_differ() if made_in else contextlib.nullcontext():
                result = dbtRunner(callbacks=[note_refusal]).invoke(parse_args)
            if not result.success:
                return None
            if made_in is not None:
                _move_seeds(result.result, made_in, request["cwd"])
                # Says where the manifest came from, for whoever wonders (and the tests).
                verdict = f"full parse: {'; '.join(refused)}" if refused else "used by dbt"
                (target / CACHE_NOTE).write_text(f"made in {made_in}\n{verdict}\n", encoding="utf-8")
            if cache_dir and key and (made_in is None or refused):
                _save_partial_parse(cache_dir, key, request["cwd"], target)
        return result.result
    except Exception:  # noqa: BLE001 - fall back to a normal dbt run
        return None
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        release_duckdb()


def _restore_partial_parse(cache_dir: Path, key: str, target: Path) -> str | None:
    """Put the cached partial-parse file for ``key`` where dbt looks for it; the project
    folder it was made in, or None when there is none to trust."""
    entry = read_partial_parse(cache_dir, key)
    if entry is None:
        return None
    made_in, content = entry
    target.mkdir(parents=True, exist_ok=True)
    (target / PARTIAL_PARSE_FILE).write_bytes(content)
    os.utime(cache_dir / f"{key}.json")
    return made_in


def _save_partial_parse(cache_dir: Path, key: str, project_dir: str, target: Path) -> None:
    parsed = target / PARTIAL_PARSE_FILE
    try:
        if parsed.is_file():
            write_partial_parse(cache_dir, key, project_dir, parsed.read_bytes())
            prune(cache_dir)
    except OSError:  # a full disk or a read-only tree costs the next session a parse, no more
        pass


def _writable(cache_dir: Path) -> bool:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(cache_dir, os.W_OK)


def _disk_key(request: dict[str, Any], parse_args: list[str]) -> str | None:
    """What the parse depends on, with the session's temporary folder left out: the
    project's files, the generated profile, the flags and the environment dbt reads."""
    project_dir = Path(request["cwd"])
    profiles_dir = _flag_value(parse_args, "--profiles-dir") or request["env"].get("DBT_PROFILES_DIR") or ""
    profiles = Path(profiles_dir) / "profiles.yml"
    if not profiles.is_file() or not (project_dir / "dbt_project.yml").is_file():
        return None
    session_dir = str(project_dir.parent)
    inputs = json.dumps(
        [
            fingerprint(project_dir, profile="", target="", skip={"target", "logs"}),
            profiles.read_text(encoding="utf-8").replace(session_dir, PLACEHOLDER),
            _parse_key(request, parse_args).replace(session_dir, PLACEHOLDER),
        ]
    )
    return hashlib.sha256(inputs.encode()).hexdigest()


def _flag_value(args: list[str], name: str) -> str | None:
    """The value given to ``name`` in ``args`` (``--name value`` or ``--name=value``)."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@contextlib.contextmanager
def _profile_path_may_differ() -> Iterator[None]:
    """Let dbt accept a partial-parse file made with another DuckDB path.

    dbt rejects the file when the profile's connection details differ; the plugin's profile
    differs between sessions only by its temporary folder, which the cache key leaves out
    and checks everything else. Without the hook (another dbt), dbt simply parses in full.
    """
    try:
        from dbt.parser.manifest import ManifestLoader

        original = ManifestLoader.is_partial_parsable
    except (ImportError, AttributeError):
        yield
        return

    def is_partial_parsable(loader: Any, manifest: Any) -> Any:
        manifest.state_check.profile_hash = loader.manifest.state_check.profile_hash
        return original(loader, manifest)

    ManifestLoader.is_partial_parsable = is_partial_parsable  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ManifestLoader.is_partial_parsable = original  # type: ignore[method-assign]


def _move_seeds(manifest: Any, made_in: str, project_dir: str) -> None:
    """Seeds keep the absolute folder they were parsed in (dbt reads the CSV from there);
    point those restored from another session's folder at this one."""
    for node in manifest.nodes.values():
        root = getattr(node, "root_path", None)
        if isinstance(root, str) and (root == made_in or root.startswith(made_in + os.sep)):
            node.root_path = project_dir + root[len(made_in) :]


def _compile_macro_templates(pending: deque[Any], server: socket.socket) -> None:
    """While no request waits, fill dbt's Jinja template cache with the ``pending`` macros.

    dbt compiles a macro's template the first time a command calls it and caches it by its
    text, with no context: the same work in every child. Done here between requests, each
    later child inherits the compiled templates (about 0.2 s of a 5-model build); a child
    forked before the end compiles the rest itself, as dbt would.
    """
    from dbt_common.clients.jinja import template_cache

    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        while pending and not selector.select(timeout=0):
            for _ in range(min(20, len(pending))):
                try:
                    template_cache.get_node_template(pending.popleft())
                except Exception:  # noqa: BLE001, S112 - the child compiles it and reports dbt's error
                    continue


def _run_with_manifest(argv: list[str], manifest: Any) -> int:
    """Run ``dbt <argv>`` with an already parsed manifest; dbt's CLI exit codes."""
    from dbt.cli.main import dbtRunner
    from dbt.parser.manifest import write_manifest

    target_path = os.environ.get("DBT_TARGET_PATH")
    if target_path:  # dbt writes it after parsing; keep the artifact where users expect it
        os.makedirs(target_path, exist_ok=True)
        write_manifest(manifest, target_path)
    result = dbtRunner(manifest=manifest).invoke(list(argv))
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def _run_child(conn: socket.socket, request: dict[str, Any], manifest: Any, server_pid: int) -> None:
    """In the forked child: become the `dbt` command of the request. Never returns."""
    code = 1
    try:
        # A worker killed mid-command (the OOM killer) takes its dbt along, so the client
        # sees the connection end at once and nothing runs on unwatched.
        _die_with_parent(signal.SIGKILL)
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
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            release_duckdb()  # close the file cleanly: os._exit runs no destructors
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve_one(
    server: socket.socket,
    conn: socket.socket,
    manifests: dict[str, Any],
    cache_dir: Path | None,
    pending: deque[Any],
) -> None:
    reader = conn.makefile("rb")
    line = reader.readline()
    if not line:
        return
    request = json.loads(line)
    manifest = None
    parse_args = _parse_args(request["argv"])
    if parse_args is not None:
        key = _parse_key(request, parse_args)
        if key not in manifests:
            manifests[key] = _parse_in_server(request, parse_args, cache_dir)
            if manifests[key] is not None:
                pending.extend(manifests[key].macros.values())
        manifest = manifests[key]
    if request.get("prepare"):
        conn.sendall(EXIT_MARKER + b"0\n")
        return
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
    interrupted_at: float | None = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if interrupted_at is None and selector.select(timeout=0.05):
            # The client asked to cancel (Ctrl-C) or went away: interrupt dbt.
            os.kill(pid, signal.SIGINT)
            interrupted_at = time.monotonic()
        elif interrupted_at is not None:
            if time.monotonic() - interrupted_at > 10:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
    selector.close()
    try:
        conn.sendall(EXIT_MARKER + str(code if code >= 0 else 128 - code).encode() + b"\n")
    except OSError:
        pass


def serve(server_fd: int, cache_dir: Path | None) -> None:
    """The worker's main loop on the listening socket ``server_fd`` (bound by pytest): one
    request at a time, each in a forked child. Partial-parse files are kept in ``cache_dir``."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = socket.socket(fileno=server_fd)
    _warm_imports()
    print(READY_LINE, flush=True)
    manifests: dict[str, Any] = {}
    pending: deque[Any] = deque()  # macros whose templates are not compiled yet
    while True:
        _compile_macro_templates(pending, server)
        conn, _ = server.accept()
        with conn:
            _serve_one(server, conn, manifests, cache_dir, pending)


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
