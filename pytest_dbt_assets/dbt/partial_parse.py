"""The worker's parse: which commands need a manifest, what a parse depends on (its keys),
and parsing once in the server, starting from dbt's partial-parse file of an earlier session
kept in the on-disk cache (:mod:`pytest_dbt_assets.cache`), or else from the one of the parse
the plugin made at start-up (its manifest cache's ``early_parse``): dbt then only checks the
files instead of parsing them a second time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pytest_dbt_assets.argv import last_value, pick
from pytest_dbt_assets.cache import (
    PLACEHOLDER,
    env_vars_read,
    fingerprint,
    locked,
    prune,
    read_partial_parse,
    write_partial_parse,
)
from pytest_dbt_assets.compat import dbt as dbt_compat
from pytest_dbt_assets.dbt.runner import process_state, release_duckdb

CACHE_NOTE = "partial_parse.from_cache.txt"  # beside a partial-parse file restored from the cache

# dbt settings from the environment that do not change what parsing produces.
_NOT_PARSE_ENV = {
    "DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_INDIRECT_SELECTION", "DBT_LOG_FORMAT", "DBT_LOG_LEVEL",
    "DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_PROJECT_DIR", "DBT_USE_COLORS", "DBT_PRINTER_WIDTH", "DBT_QUIET",
}  # fmt: skip


# --- What the worker reads of dbt's command line (through argv.py, the one parser) ----------

# Commands that load a manifest, and the flags that change what parsing produces.
_MANIFEST_COMMANDS = {"build", "run", "test", "seed", "snapshot", "compile"}
_PARSE_FLAGS = {"--profile", "--target", "--vars", "--project-dir", "--profiles-dir"}


def parse_args_of(argv: list[str]) -> list[str] | None:
    """``["parse", <flags that shape the manifest>]`` for a manifest command, else None."""
    if not argv or argv[0] not in _MANIFEST_COMMANDS:
        return None
    return ["parse", *pick(argv, _PARSE_FLAGS)]


# --- Keys: what a parse depends on ------------------------------------------------------------


@functools.cache
def _env_vars_read_by(project_dir: str) -> frozenset[str]:
    """Names the project reads with ``env_var()`` (the project folder is a session's copy)."""
    names: set[str] = set()
    for path in Path(project_dir).rglob("*"):
        if path.suffix in {".sql", ".yml", ".yaml", ".py", ".csv", ".md"} and "target" not in path.parts:
            names.update(env_vars_read(path.read_bytes()))
    return frozenset(names)


def parse_key(request: dict[str, Any], parse_args: list[str]) -> str:
    """What a parse depends on: folder, flags, dbt's own settings and the env vars read."""
    read = _env_vars_read_by(request["cwd"])
    env = {k: v for k, v in request["env"].items() if (k.startswith("DBT_") and k not in _NOT_PARSE_ENV) or k in read}
    return json.dumps([request["cwd"], parse_args, sorted(env.items())])


def _disk_key(request: dict[str, Any], parse_args: list[str]) -> str | None:
    """What the parse depends on, with the session's temporary folder left out: the
    project's files, the generated profile, the flags and the environment dbt reads."""
    project_dir = Path(request["cwd"])
    profiles_dir = last_value(parse_args, "--profiles-dir") or request["env"].get("DBT_PROFILES_DIR") or ""
    profiles = Path(profiles_dir) / "profiles.yml"
    if not profiles.is_file() or not (project_dir / "dbt_project.yml").is_file():
        return None
    session_dir = str(project_dir.parent)
    inputs = json.dumps(
        [
            fingerprint(project_dir, profile="", target="", skip={"target", "logs"}),
            profiles.read_text(encoding="utf-8").replace(session_dir, PLACEHOLDER),
            parse_key(request, parse_args).replace(session_dir, PLACEHOLDER),
        ]
    )
    return hashlib.sha256(inputs.encode()).hexdigest()


class RefusalNotes:
    """dbt's reasons for refusing a partial-parse file, noted from the events it fires: pass
    the instance as a ``dbtRunner`` callback; empty when dbt used the file (or had none)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, event: Any) -> None:
        if (reason := dbt_compat.refused_partial_parse(event)) is not None:
            self.reasons.append(reason)


# --- Parsing once in the server ---------------------------------------------------------------


def parse_in_server(
    request: dict[str, Any], parse_args: list[str], cache_dir: Path | None, seed: tuple[Path, str] | None = None
) -> Any:
    """Parse once in the server, as the request would; None when parsing fails (the child
    then runs the command normally and reports dbt's own error).

    With ``cache_dir``, dbt's partial-parse file of an earlier session's identical parse is
    put where dbt looks for it, so dbt only checks the files instead of parsing them; a new
    or refused one is cached after the parse. Without one there, ``seed`` (a cache folder and
    key: the plugin's own parse of the project at start-up) is put there instead; dbt checks
    it as any partial-parse file (flags, vars, profile, files, env vars) and parses in full
    what it refuses. Cache trouble only means a full parse.
    """
    # Only the worker's server parses; the parse keys above are used without dbt (importing
    # it costs seconds), so dbt is imported here.
    from dbt.cli.main import dbtRunner

    # The server forks a child for each command, and a command that parses (dbt ls,
    # run-operation) parses in its child: dbt's static parser, once it has run in the server,
    # leaves the child waiting for threads only the server has, for ever.
    environ = {**request["env"], "DBT_LOG_LEVEL": "none", "DBT_STATIC_PARSER": "false"}
    try:
        with process_state(request["cwd"], environ):
            target = Path(os.environ.get("DBT_TARGET_PATH") or "target").resolve()
            key = _disk_key(request, parse_args) if cache_dir is not None and _writable(cache_dir) else None
            refusals = RefusalNotes()

            # The lock makes a concurrent worker wait for this parse, then start from its file.
            with locked(cache_dir / f"{key}.lock") if cache_dir and key else contextlib.nullcontext():
                made_in = _restore_partial_parse(cache_dir, key, target) if cache_dir and key else None
                seeded = False
                if made_in is None and seed is not None:
                    made_in = _restore_partial_parse(*seed, target)
                    seeded = made_in is not None
                with dbt_compat.partial_parse_ignoring_profile_hash() if made_in else contextlib.nullcontext():
                    result = dbtRunner(callbacks=[refusals]).invoke(parse_args)
                if not result.success:
                    return None
                if made_in is not None:
                    # Seeds keep the absolute folder they were parsed in (dbt reads the CSV from
                    # there): point those restored from another session's folder at this one.
                    dbt_compat.move_node_roots(result.result, made_in, request["cwd"])
                    # Says where the manifest came from, for whoever wonders (and the tests).
                    verdict = f"full parse: {'; '.join(refusals.reasons)}" if refusals.reasons else "used by dbt"
                    source = "\nfrom the plugin's start-up parse" if seeded else ""
                    (target / CACHE_NOTE).write_text(f"made in {made_in}\n{verdict}{source}\n", encoding="utf-8")
                # A file dbt accepted keeps the folders it was made in (the seed's are in its own
                # cache entry already), so only one dbt wrote afresh is cached under this key.
                if cache_dir and key and (made_in is None or refusals.reasons):
                    _save_partial_parse(cache_dir, key, request["cwd"], target)
            return result.result
    except Exception:  # noqa: BLE001 - fall back to a normal dbt run
        return None
    finally:
        release_duckdb()


def _restore_partial_parse(cache_dir: Path, key: str, target: Path) -> str | None:
    """Put the cached partial-parse file for ``key`` where dbt looks for it; the project
    folder it was made in, or None when there is none to trust."""
    entry = read_partial_parse(cache_dir, key)
    if entry is None:
        return None
    made_in, content = entry
    target.mkdir(parents=True, exist_ok=True)
    (target / dbt_compat.partial_parse_file_name()).write_bytes(content)
    with contextlib.suppress(OSError):  # read-only: the entry is only pruned earlier
        os.utime(cache_dir / f"{key}.json")
    return made_in


def _save_partial_parse(cache_dir: Path, key: str, project_dir: str, target: Path) -> None:
    parsed = target / dbt_compat.partial_parse_file_name()
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
