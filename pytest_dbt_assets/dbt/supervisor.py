"""The dbt worker's supervision, for the session: when the warm worker (:mod:`.worker`) is
spawned, given its folder, discarded, restarted and stopped, which ``dbt`` executable the
``DbtCliResource`` runs, and a ``dbt`` installed beside Python put on ``PATH``. pytest-free."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from pytest_dbt_assets.dbt.runner import DbtProjectDirs
from pytest_dbt_assets.dbt.worker import FOLDER_PREFIX, DbtWorker, remove_stale_folders
from pytest_dbt_assets.dbt.zygote import ZYGOTE_ENV, Zygote
from pytest_dbt_assets.errors import DbtWorkerError


def folder_to_find_dbt(path: str | None, python: str) -> str | None:
    """The folder to put on ``PATH`` so that ``dbt`` is found: the one holding ``python``
    (``sys.executable``) when it has a ``dbt`` and ``path`` has none; else None.

    An IDE or CI step that runs ``.venv/bin/pytest`` without activating the virtualenv has
    dbt beside Python but not on ``PATH``, and dagster-dbt's ``DbtCliResource`` looks there.
    The folder is taken as ``python`` names it (not resolved: a virtualenv's python is a
    symlink to the base interpreter, whose folder has no dbt).
    """
    if shutil.which("dbt", path=path) is not None:
        return None
    folder = Path(python).parent
    if not shutil.which("dbt", path=str(folder)):
        return None
    return str(folder)


def put_dbt_on_path() -> Callable[[], None] | None:
    """Put ``sys.executable``'s folder on ``PATH`` when it holds the only dbt
    (:func:`folder_to_find_dbt`); returns what restores ``PATH``, or None when nothing changed."""
    saved = os.environ.get("PATH")
    folder = folder_to_find_dbt(saved, sys.executable)
    if folder is None:
        return None
    os.environ["PATH"] = folder + (os.pathsep + saved if saved else "")

    def restore() -> None:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved

    return restore


class WorkerSupervisor:
    """The session's dbt worker, from its spawn to its stop.

    :meth:`spawn` starts its process with the session, so that its dbt imports overlap the
    session's own start-up; :meth:`launch` gives it its folder once collection shows a test
    needs it (:meth:`discard_unused` stops it otherwise). Around each materialization,
    :meth:`restart_if_dead` and :meth:`death_during_call` say what happened to it. Nothing
    runs with the ``subprocess`` runner, or without a dbt project.

    Example:
        >>> supervisor = WorkerSupervisor(enabled=True, cache_dir=Path("target/cache/partial_parse"))
        >>> supervisor.spawn()
        >>> supervisor.launch(basetemp, make_folder, seed=None)
        >>> supervisor.executable_for(project)
    """

    def __init__(self, *, enabled: bool, cache_dir: Path | None) -> None:
        self.enabled = enabled
        self.cache_dir = cache_dir  # where the worker keeps dbt's partial-parse files
        self.worker: DbtWorker | None = None
        self.zygote: Zygote | None = None

    def start_zygote(self) -> None:
        """For the controller of xdist workers, which runs no test: start the warm process that
        each worker's dbt worker is forked from (:mod:`.zygote`), so that dbt is imported once
        for all of them; unless a zygote is named already."""
        if self.enabled and self.zygote is None and ZYGOTE_ENV not in os.environ:
            try:
                self.zygote = Zygote()
            except (OSError, DbtWorkerError):  # each worker then starts its dbt worker itself
                self.zygote = None

    def spawn(self) -> None:
        """Start the worker's process now; it serves once :meth:`launch` gives it its folder."""
        if self.enabled and self.worker is None:
            self.worker = DbtWorker(cache_dir=self.cache_dir)
            self.worker.spawn()

    def launch(
        self, basetemp: Path, make_folder: Callable[[str], Path], *, seed: tuple[Path, str] | None
    ) -> DbtWorker | None:
        """The worker, launched on first call; None with the ``subprocess`` runner.

        ``make_folder(prefix)`` makes its folder (under ``basetemp``, removed at the end of the
        session); folders that killed sessions left behind in ``basetemp``'s root go first.
        ``seed``: where the start-up parse is cached, for the worker's first parse to start from."""
        if not self.enabled:
            return None
        if self.worker is None or not self.worker.launched:
            if self.worker is None:
                self.worker = DbtWorker(cache_dir=self.cache_dir)
            remove_stale_folders(basetemp)
            self.worker.seed = seed
            self.worker.launch(make_folder(FOLDER_PREFIX))
        return self.worker

    def discard_unused(self) -> None:
        """Stop a worker :meth:`spawn` started that no collected test needs."""
        if self.worker is not None and not self.worker.launched:
            self.worker.stop()
            self.worker = None

    def prepare(self, projects: Iterable[DbtProjectDirs]) -> None:
        """Let a launched worker parse ``projects`` now, while Dagster loads the definitions."""
        if self.worker is not None:
            for project in projects:
                self.worker.prepare_build(project)

    def executable_for(self, project: DbtProjectDirs) -> str | None:
        """The worker's client, ready for ``project``; None without a worker.

        Raises:
            DbtWorkerError: the worker did not start.
        """
        if self.worker is None:
            return None
        self.worker.prepare_build(project)
        self.worker.wait_ready()
        return str(self.worker.executable)

    def restart_if_dead(self) -> str | None:
        """Before a materialization: restart a worker that died since the last one; what
        happened (for a ``DbtWorkerRestartedWarning``), or None.

        Raises:
            DbtWorkerError: it died a second time in the session, or cannot be restarted.
        """
        return self.worker.ensure_running() if self.worker is not None else None

    def death_during_call(self) -> str | None:
        """After a materialization: what happened if the worker died during it, else None."""
        return self.worker.death_during_call() if self.worker is not None else None

    def stop(self) -> None:
        """Stop the worker (its folder goes with it) and the zygote. Safe to call twice."""
        if self.worker is not None:
            self.worker.stop()
        if self.zygote is not None:
            self.zygote.stop()
            self.zygote = None
