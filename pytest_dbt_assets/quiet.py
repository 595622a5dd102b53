"""What upstream packages print while the plugin drives them that is not the user's to act on,
kept out of what pytest shows, where the plugin drives them:

- warnings raised inside Dagster's, dagster-dbt's, dbt's and the emulator's own code (an API
  of Dagster's that dagster-dbt calls is deprecated, a class dagster-dbt builds is in beta). A
  warning attributed to the user's own code (a deprecated call in their asset) is left alone:
  filters match the module a warning is attributed to;
- log lines printed more than once: dbt's tracking library calls ``logging.basicConfig()`` when
  imported, so every Dagster log record was printed by that root handler too, and records of
  Dagster's own loggers reached pytest's log capture besides Dagster's console (three copies
  of each line of a failed test's output).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def quiet_upstream() -> Iterator[None]:
    """Where the plugin drives Dagster and dbt: all of the above."""
    with upstream_warnings_dropped(), no_new_root_handlers(), dagster_logs_once():
        yield
