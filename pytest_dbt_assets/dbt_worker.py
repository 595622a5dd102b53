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
import tempfile
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
from pytest_dbt_assets.project import release_duckdb

if TYPE_CHECKING:
    from pytest_dbt_assets.project import DbtAssetsProject

EXIT_MARKER = b"\x00\x00dbt-assets-exit:"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's name, in the target folder
CACHE_NOTE = "partial_parse.from_cache.txt"  # beside a partial-parse file restored from the cache
READY_LINE = "dbt-assets-worker ready"

CLIENT_TEMPLATE = '''#!{python} -IS
"""dbt, answered by the pytest-dbt-assets worker at {socket_path!r}."""
import json, os, signal, socket, sys

MARKER = {marker!r}
sock = socket.socket(socket.AF_UNIX)
sock.connect({socket_path!r})
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
sys.stderr.write("pytest-dbt-assets: the dbt worker went away before dbt finished\\n")
sys.exit(2)
'''


class DbtWorker:
    """Starts and stops the worker process; ``executable`` goes into ``DbtCliResource``.

    ``launch()`` returns at once: the socket is bound here and handed to the worker, so
    requests (``prepare_build``, dbt commands) queue up while it is still importing dbt.
    ``wait_ready()`` tells whether it started.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        # Unix socket paths are limited to ~100 bytes: keep it short, outside deep temp dirs.
        self._dir = Path(tempfile.mkdtemp(prefix="dbtw-"))
        self.socket_path = self._dir / "s"
        self.executable = self._dir / "dbt"
        self._process: subprocess.Popen[str] | None = None
        self._ready = False
        self._prepared: dict[Path, socket.socket] = {}

    def launch(self) -> None:
        self.executable.write_text(
            CLIENT_TEMPLATE.format(python=sys.executable, socket_path=str(self.socket_path), marker=EXIT_MARKER),
            encoding="utf-8",
        )
        self.executable.chmod(0o755)
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(self.socket_path))
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

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the worker serves; stop it and raise RuntimeError if it does not."""
        if self._ready:
            return
        process = self._process
        assert process is not None and process.stdout is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.strip() == READY_LINE:
                self._ready = True
                return
            if not line and process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the pytest-dbt-assets dbt worker did not start")

    def start(self, timeout: float = 120.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def prepare_build(self, project: DbtAssetsProject) -> None:
        """Ask the worker to parse ``project`` now, as for the plain ``dbt build`` that
        dagster-dbt's ``DbtCliResource.cli`` sends, so the first real command finds the
        manifest ready. Does not wait: the worker answers requests in order. Like dagster-dbt,
        the folders are set explicitly, so the user's ``DBT_*`` variables cannot redirect it."""
        scratch = str(project.target_dir / "dbt_assets_prepare")
        env = {
            **os.environ,
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
        if project.project_dir in self._prepared:
            return
        conn = socket.socket(socket.AF_UNIX)
        try:
            conn.connect(str(self.socket_path))
            conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError:  # the worker is gone: wait_ready() says so where it matters
            conn.close()
            return
        self._prepared[project.project_dir] = conn

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
        shutil.rmtree(self._dir, ignore_errors=True)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent (pytest) dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
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


def _run_child(conn: socket.socket, request: dict[str, Any], manifest: Any) -> None:
    """In the forked child: become the `dbt` command of the request. Never returns."""
    code = 1
    try:
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


def _serve_one(conn: socket.socket, manifests: dict[str, Any], cache_dir: Path | None, pending: deque[Any]) -> None:
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
    pid = os.fork()
    if pid == 0:
        _run_child(conn, request, manifest)
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
            _serve_one(conn, manifests, cache_dir, pending)


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
