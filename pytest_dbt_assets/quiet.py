"""What upstream packages print while the plugin drives them that is not the user's to act on,
kept out of what pytest shows, where the plugin drives them:

- warnings raised inside Dagster's, dagster-dbt's, dbt's and the emulator's own code (an API
  of Dagster's that dagster-dbt calls is deprecated, a class dagster-dbt builds is in beta). A
  warning attributed to the user's own code (a deprecated call in their asset) is left alone:
  filters match the module a warning is attributed to;
- log lines printed more than once: dbt's tracking library calls ``logging.basicConfig()`` when
  imported, so every Dagster log record was printed by that root handler too, and records of
  Dagster's own loggers reached pytest's log capture besides Dagster's console (three copies
  of each line of a failed test's output);
- an error Python cannot raise, reported by pytest as a ``PytestUnraisableExceptionWarning``
  in whichever test collects the object: dagster-dbt's generator over dbt's output, dropped
  unfinished when a step fails while dbt still streams, ignores being closed;
- what a materialization prints besides the user's own lines: dagster-dbt echoes each of dbt's
  log lines to stdout (two lines per node built, kept in the run's folder instead, besides
  dbt's own ``dbt.log``), and Dagster's console logs its events, a failed step's with its
  stack trace twice (step and run failure), though the plugin's error already tells what failed.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pytest_dbt_assets.compat import dagster_dbt as dagster_dbt_compat

# The packages whose own code raises them: Dagster and its integrations, dbt, the emulator.
UPSTREAM_MODULES = r"(dagster(_\w+)?|dbt(_\w+)?|fakesnow|sqlglot(rs|c)?)(\..*)?$"
# The API-lifecycle warnings: deprecations and Dagster's beta, preview and supersession notes.
_DAGSTER_LIFECYCLE = ("BetaWarning", "PreviewWarning", "SupersessionWarning")


@contextmanager
def upstream_warnings_dropped() -> Iterator[None]:
    """Inside: deprecation and API-lifecycle warnings raised in upstream packages' code are dropped."""
    import dagster

    categories: list[type[Warning]] = [DeprecationWarning, PendingDeprecationWarning, FutureWarning]
    categories += [cls for name in _DAGSTER_LIFECYCLE if isinstance(cls := getattr(dagster, name, None), type)]
    with warnings.catch_warnings():
        for category in categories:
            warnings.filterwarnings("ignore", category=category, module=UPSTREAM_MODULES)
        yield


@contextmanager
def no_new_root_handlers() -> Iterator[None]:
    """Inside: a handler that imported code adds to the root logger (``logging.basicConfig()``
    at import, as dbt's tracking library does) is removed when the block ends."""
    before = list(logging.root.handlers)
    try:
        yield
    finally:
        for handler in logging.root.handlers[:]:
            if handler not in before:
                logging.root.removeHandler(handler)


def abandoned_dbt_streams_unreported() -> Callable[[], None]:
    """From now on, the "generator ignored GeneratorExit" of dagster-dbt's generator over a dbt
    command's output, collected after a step failed while dbt still streamed (the user's
    ``@dbt_assets`` body raised, Dagster rejected an event), is not reported; any other error
    Python cannot raise is, as before. Returns the function that puts the previous hook back."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, RuntimeError) and dagster_dbt_compat.is_dbt_output_stream(
            unraisable.object
        ):
            return
        previous(unraisable)

    def restore() -> None:
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous

    sys.unraisablehook = hook
    return restore


@contextmanager
def dagster_logs_once() -> Iterator[None]:
    """Inside: records of Dagster's loggers (``dagster.builtin``: dagster-dbt's lines, the
    user's ``get_dagster_logger()``) are shown by Dagster's console logger only, not by
    pytest's log capture as well."""
    base = logging.getLogger("dagster")
    propagate = base.propagate
    base.propagate = False
    try:
        yield
    finally:
        base.propagate = propagate


class _EchoDiverted:
    """``sys.stdout`` with what dagster-dbt's own code writes to it diverted to a file; every
    other write (the user's ``print``) goes through. The writer is the calling frame's module."""

    def __init__(self, stream: IO[str], diverted: IO[str]) -> None:
        self._stream = stream
        self._diverted = diverted

    def write(self, text: str) -> int:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        target = self._diverted if caller.partition(".")[0] == "dagster_dbt" else self._stream
        return target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def dbt_echo_kept_in(path: Path) -> Iterator[None]:
    """Inside: dagster-dbt's echo of dbt's log lines goes to ``path``, not to the (captured)
    stdout that a failed test prints."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stdout = sys.stdout
    with path.open("a", encoding="utf-8") as diverted:
        sys.stdout = _EchoDiverted(stdout, diverted)  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout = stdout


class _UserRecords(logging.Filter):
    """Records of the user's own lines (``context.log``, ``get_dagster_logger()``), not Dagster's
    events; dagster-dbt's notes ("Running dbt command: ...") never reach it
    (:func:`upstream_notes_dropped`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        if meta.get("dagster_event") is not None:
            return False
        record.step = meta.get("step_key") or meta.get("job_name") or ""
        record.line = meta.get("orig_message", record.getMessage())
        return True


def _upstream_notes(record: logging.LogRecord) -> bool:
    """False for dagster-dbt's own INFO notes; they reach Dagster's loggers as ``dagster.builtin``
    records like the user's ``get_dagster_logger()`` lines, told apart by the file logging them."""
    return record.levelno > logging.INFO or "dagster_dbt" not in Path(record.pathname).parts


def _user_lines(_init_context: Any) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_UserRecords())
    handler.setFormatter(logging.Formatter("%(step)s - %(levelname)s - %(line)s"))
    # One per run and not registered, as Dagster builds its console logger: no handler piles up.
    built = logging.Logger("dbt_assets_run", logging.INFO)  # noqa: LOG001
    built.addHandler(handler)
    return built


def user_lines_logger() -> Any:
    """A Dagster logger definition for the plugin's runs: one line per user log record on
    stderr (``step - LEVEL - message``), and nothing of Dagster's own events."""
    from dagster import LoggerDefinition

    return LoggerDefinition(
        _user_lines, description="The user's own log lines; Dagster's events are the plugin's to tell."
    )


@contextmanager
def upstream_notes_dropped() -> Iterator[None]:
    """Inside: dagster-dbt's INFO notes do not reach the run's loggers."""
    builtin = logging.getLogger("dagster.builtin")
    builtin.addFilter(_upstream_notes)
    try:
        yield
    finally:
        builtin.removeFilter(_upstream_notes)


@contextmanager
def quiet_upstream() -> Iterator[None]:
    """Where the plugin drives Dagster and dbt: all of the above."""
    with upstream_warnings_dropped(), no_new_root_handlers(), dagster_logs_once():
        yield
