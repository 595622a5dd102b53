"""On-disk manifest cache, keyed by a content hash of everything that shapes a parse.

A warm session runs no ``dbt parse``. Entries are written atomically, carry a checksum, and
are read under a file lock, so xdist workers parse a project once between them; an entry
that is corrupted or half-written fails its checksum and is rebuilt, never trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

FORMAT = 1
KEEP_ENTRIES = 8
# Temporary project folders differ per session; the manifest stores them as `root_path`.
PLACEHOLDER = "@@pytest-dbt-assets-project-dir@@"
_ENV_VAR_USE = re.compile(rb"""env_var\(\s*['"]([^'"]+)['"]""")


def cache_folder(project_dir: Path, root: Path | None = None) -> Path:
    """The plugin's cache of a dbt project: manifests, partial-parse files and baseline
    templates, kept across runs under its ``target/`` (which dbt users do not commit), or in
    ``root`` (``dbt_assets_cache_dir``: a folder a CI job keeps between runs), one folder per
    dbt project name. Entries are keyed by content, so projects may share one."""
    return root / project_dir.name if root is not None else project_dir / "target" / "dbt_assets_cache"


def env_vars_read(content: bytes) -> set[str]:
    """Names of the environment variables a project file reads with ``env_var()``."""
    return {name.decode(errors="replace") for name in _ENV_VAR_USE.findall(content)}


def fingerprint(project_dir: Path, *, profile: str, target: str, skip: Collection[str] = ()) -> str:
    """sha256 of the project's files (but those under the top-level folders named in
    ``skip``), the dbt and adapter versions, the profile and target, and the values of
    environment variables the project reads with ``env_var()``."""
    digest = hashlib.sha256()
    env_names: set[str] = set()
    for name in ("dbt-core", "dbt-duckdb", "dbt-adapters"):
        digest.update(f"{name}={package_version(name)}\n".encode())
    digest.update(f"format={FORMAT} profile={profile} target={target}\n".encode())
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
        if path.relative_to(project_dir).parts[0] in skip:
            continue
        content = path.read_bytes()
        env_names.update(env_vars_read(content))
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(hashlib.sha256(content).digest())
    for name in sorted(env_names):
        value = os.environ.get(name)
        digest.update(name.encode() + b"=" + (value.encode() if value is not None else b"\0unset") + b"\n")
    return digest.hexdigest()


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process (xdist workers) using the same cache.

    Raises:
        CacheUnwritableError: the lock file's folder cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 - closed below, after the lock is released
    except OSError as error:
        raise CacheUnwritableError(f"{path.parent} cannot be written ({error.strerror or error})") from error
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_entry(path: Path, key: str) -> str | None:
    """The cached manifest text, or None when missing, of another key, or corrupted."""
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        text = envelope["manifest"]
        if envelope["format"] != FORMAT or envelope["key"] != key:
            return None
        if hashlib.sha256(text.encode()).hexdigest() != envelope["sha256"]:
            return None
        return str(text)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_entry(path: Path, key: str, text: str) -> None:
    """Write atomically: readers see the old entry or the whole new one, never a part.

    Raises:
        CacheUnwritableError: the cache folder cannot be written.
    """
    envelope = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(text.encode()).hexdigest(), "manifest": text}
    try:
        write_atomically(path, json.dumps(envelope).encode())
    except OSError as error:
        raise CacheUnwritableError(f"{path.parent} cannot be written ({error.strerror or error})") from error


def write_atomically(path: Path, content: bytes, *, prefix: str = ".entry-") -> None:
    """Replace ``path`` with ``content`` through a temp file beside it (named ``prefix``...),
    so a reader sees the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_partial_parse(cache_dir: Path, key: str) -> tuple[str, bytes] | None:
    """dbt's ``partial_parse.msgpack`` cached for ``key`` and the project folder it was made
    in; None when missing, of another key, or corrupted."""
    try:
        envelope = json.loads((cache_dir / f"{key}.json").read_text(encoding="utf-8"))
        content = (cache_dir / f"{key}.msgpack").read_bytes()
        if envelope["format"] != FORMAT or envelope["key"] != key:
            return None
        if hashlib.sha256(content).hexdigest() != envelope["sha256"]:
            return None
        return str(envelope["made_in"]), content
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_partial_parse(cache_dir: Path, key: str, made_in: str, content: bytes, family: str | None = None) -> None:
    """Cache ``content`` for ``key``: the file first, then the envelope holding its checksum,
    so a reader never trusts a half-written pair. ``family`` names the parses it may start
    when the project has changed since (see :func:`newest_partial_parse`)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(cache_dir / f"{key}.msgpack", content)
    envelope = {
        "format": FORMAT,
        "key": key,
        "made_in": made_in,
        "sha256": hashlib.sha256(content).hexdigest(),
        "family": family,
    }
    write_atomically(cache_dir / f"{key}.json", json.dumps(envelope).encode())


def newest_partial_parse(cache_dir: Path, family: str) -> tuple[str, bytes] | None:
    """The most recently used partial-parse file cached in ``cache_dir`` for ``family`` (a
    parse of the same dbt project with the same profile and target, whatever its files were)
    and the folder it was made in; None when there is none to trust."""

    def last_used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another process's prune
            return 0.0

    for envelope in sorted(cache_dir.glob("*.json"), key=last_used, reverse=True):
        try:
            found = json.loads(envelope.read_text(encoding="utf-8")).get("family")
        except (OSError, ValueError, AttributeError):
            continue
        if found == family and (entry := read_partial_parse(cache_dir, envelope.stem)) is not None:
            return entry
    return None


def cached_manifest_text(cache_dir: Path, key: str, project_dir: Path, parse: Callable[[], str]) -> tuple[str, bool]:
    """The manifest JSON text for ``key``, from the cache or from ``parse()``.

    Returns the text (with ``project_dir`` in it) and whether it came from the cache.
    """
    text, from_cache, _ = manifest_entry(cache_dir, key, project_dir, parse)
    return text.replace(PLACEHOLDER, str(project_dir)), from_cache


def manifest_entry(
    cache_dir: Path, key: str, project_dir: Path, parse: Callable[[], str]
) -> tuple[str, bool, str | None]:
    """The manifest JSON text for ``key`` with :data:`PLACEHOLDER` for ``project_dir``.

    Returns the text, whether it came from the cache, and why the cache could not be used
    (None when it could). A cache folder that cannot be written (a read-only checkout, a
    read-only ``target/``) is still read, without the lock: entries are replaced atomically
    and checksummed, so a reader never trusts a partial one. On a miss ``parse()`` runs and
    nothing is stored.
    """
    entry = cache_dir / f"{key}.json"
    text: str | None = None
    try:
        with locked(cache_dir / f"{key}.lock"):
            cached = read_entry(entry, key)
            if cached is not None:
                _touch(entry)
                return cached, True, None
            text = _with_placeholder(parse(), project_dir)
            write_entry(entry, key, text)
    except CacheUnwritableError as error:
        if text is None:
            cached = read_entry(entry, key)
            if cached is not None:
                return cached, True, None
            text = _with_placeholder(parse(), project_dir)
        return text, False, str(error)
    prune(cache_dir)
    return text, False, None


class CacheUnwritableError(OSError):
    """The cache folder cannot be created or written (read-only file system, permissions)."""


def _with_placeholder(text: str, project_dir: Path) -> str:
    return text.replace(str(project_dir), PLACEHOLDER)


def _touch(entry: Path) -> None:
    try:
        os.utime(entry)
    except OSError:  # read-only: the entry is only pruned earlier than it would be
        pass


def prune(cache_dir: Path, keep: int = KEEP_ENTRIES) -> None:
    """Drop all but the ``keep`` most recently used entries."""
    entries = sorted(cache_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        for suffix in (".json", ".msgpack", ".lock"):
            old.with_suffix(suffix).unlink(missing_ok=True)
