"""Folders that name the pytest process that made them, so that a later session can remove
those a killed session left behind (SIGKILL gives it no chance to clean up)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

OWNER_FILE = "owner"  # "<pid> <start time>" of the process that made the folder
TEMP_PREFIX = "pytest-dbt-assets-"  # the start-up parse's copies, in the system's temp folder


def process_identity(pid: int) -> str:
    """``"<pid> <start time>"``: tells a live process from a later one given the same pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        return f"{pid} ?"


def claim(folder: Path) -> None:
    """Write ``folder``'s owner file naming this process."""
    (folder / OWNER_FILE).write_text(process_identity(os.getpid()) + "\n", encoding="utf-8")


def owner_alive(identity: str) -> bool:
    pid_text, _, start = identity.strip().partition(" ")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True  # not ours to judge: leave it
    return start in {"?", ""} or process_identity(pid) == identity.strip()


def remove_abandoned(folders: Iterable[Path]) -> list[Path]:
    """Remove each of ``folders`` whose owner process no longer runs; folders without an owner
    file (not ours, or being made right now) are left alone. Returns those removed."""
    removed = []
    for folder in folders:
        try:
            identity = (folder / OWNER_FILE).read_text(encoding="utf-8")
        except OSError:
            continue
        if not owner_alive(identity):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def make_temp_folder() -> Path:
    """A new folder in the system's temp folder, owned by this process; the copies that
    killed sessions left there go first."""
    remove_abandoned(Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"))
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    claim(folder)
    return folder
