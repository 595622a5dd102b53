"""owner.py: folders name the process that made them; a later session removes only those
whose owner no longer runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_dbt_assets.owner import claim, owner_alive, process_identity, remove_abandoned


def _ended_process_identity() -> str:
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    identity = process_identity(process.pid)
    process.communicate(b"")
    return identity


def test_only_folders_of_ended_owners_are_removed(tmp_path: Path) -> None:
    ended, mine, unowned = tmp_path / "ended", tmp_path / "mine", tmp_path / "unowned"
    for folder in (ended, mine, unowned):
        (folder / "project").mkdir(parents=True)
    (ended / "owner").write_text(_ended_process_identity() + "\n")
    claim(mine)
    assert remove_abandoned([ended, mine, unowned]) == [ended]
    assert not ended.exists() and mine.is_dir() and unowned.is_dir()


def test_a_reused_pid_is_not_the_owner() -> None:
    pid, _, start = process_identity(1).partition(" ")
    assert owner_alive(f"{pid} {start}")
    assert not owner_alive(f"{pid} {int(start) + 1}")
