"""One error hierarchy: every message says what happened, where, and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Mapping

# CSI sequences (colours, cursor moves) and the bare `[32m` left when a log drops the ESC.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|\[[0-9][0-9;]{0,11}m")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (dbt colours its log lines: ``[32mOK[0m``)."""
    return _ANSI.sub("", text)


class DbtAssetsError(Exception):
    """Base class of every error the plugin raises on purpose. Its message never carries
    terminal colour codes."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(strip_ansi(arg) if isinstance(arg, str) else arg for arg in args))

    def headline(self) -> str:
        """One line for pytest's short summary (``FAILED ... - ``): the message's first line."""
        return next((line.strip() for line in str(self).splitlines() if line.strip()), type(self).__name__)


class ProjectNotFoundError(DbtAssetsError):
    """The configured folder holds no dbt_project.yml."""


class SeveralProjectsError(DbtAssetsError):
    """One dbt project was asked for (``dbt_assets_project``) where the code location has several."""


class DbtCommandError(DbtAssetsError):
    """A dbt command (parse, deps, seed, ...) against the temporary project failed."""


class DbtParseError(DbtCommandError):
    """dbt could not parse the project: YAML, Jinja, unknown ref, cycle, ..."""


class DbtIsolationError(DbtCommandError):
    """``dbt_assets_project.dbt()`` was given a flag that would point dbt outside the temp project."""


class ReadOnlyQueryError(DbtAssetsError):
    """``dbt_assets_project.query()`` was asked to write or to reach a file outside the test database."""


class DefinitionsError(DbtAssetsError):
    """The configured Dagster definitions cannot be imported or are of the wrong type."""


class SelectionError(DbtAssetsError):
    """A selection matched nothing or could not be understood."""


class SourceDataError(DbtAssetsError):
    """A dbt source needed by the run has no data and no declared columns, or bad data."""


class MaterializationError(DbtAssetsError):
    """A materialization failed; the message lists each failure in words."""

    def __init__(self, message: str, failures: list[str]) -> None:
        super().__init__(message)
        self.failures = [strip_ansi(line) for line in failures]

    def headline(self) -> str:
        """The first failure, with how many more there are."""
        if not self.failures:
            return super().headline()
        first = self.failures[0].splitlines()[0]
        more = len(self.failures) - 1
        return first + (f" (and {more} more)" if more else "")


class MissingSourceError(SourceDataError, MaterializationError):
    """dbt failed reading a source that has no data; the message says the three ways to give it."""


def materialization_error(failures: list[str], raised_at: Mapping[str, str] | None = None) -> MaterializationError:
    """The error of a materialization that failed with ``failures``: a
    :class:`MissingSourceError` (its hints first) when dbt read a source that has no data.
    ``raised_at`` (step key -> where its exception was raised) goes under that step's line."""
    hints = [line for line in failures if line.startswith("dbt source ")]
    others = [line for line in failures if line not in hints]
    places = {f"step {step} raised ": where for step, where in (raised_at or {}).items()}
    lines = [
        f"- {line}" + next((where for prefix, where in places.items() if line.startswith(prefix)), "")
        for line in others
    ]
    message = "Materialization failed:\n" + "\n".join(lines)
    if hints:
        return MissingSourceError("\n".join(hints) + "\n" + message, failures)
    return MaterializationError(message, failures)


class PartitionKeyError(SelectionError):
    """A partitioned asset was selected without ``partition_key`` (or with an unknown one)."""


class UnknownAssetKeyError(DbtAssetsError, KeyError):
    """``dbt_asset_graph.upstream()`` / ``.downstream()`` was given a key the graph does not have.

    Also a ``KeyError``: the graph is looked up like a mapping, and code written before this
    class existed catches ``KeyError``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError would quote the message


class SnapshotDataError(DbtAssetsError, TypeError):
    """``dbt_assets_snapshot`` was compared with an object it cannot turn into plain data.

    Also a ``TypeError`` (what it raised before this class existed): the value is of the wrong type.
    """


class DbtWorkerError(DbtAssetsError):
    """The warm dbt worker did not start, or died a second time in the session."""


class DbtWorkerRestartedWarning(UserWarning):
    """The warm dbt worker died (e.g. killed by the out-of-memory killer) and was restarted."""


class BaselineError(DbtAssetsError):
    """The session baseline could not be built, or a test asked for it in a way it cannot serve
    (a later call asking for another start, source rows the baseline already loaded)."""


class MarkerError(DbtAssetsError):
    """``@pytest.mark.dbt_assets(...)`` was given an argument it does not take (a typo such as
    ``selct=``, or a positional argument)."""


class WarehouseError(DbtAssetsError):
    """The warehouse the user's profile names cannot be served on the test database (its
    adapter or emulator is not installed, its database cannot be told)."""


class WarehouseConnectionRefused(WarehouseError):
    """Code under test tried to reach a database other than the test database (a DuckDB file
    outside pytest's basetemp, MotherDuck, a real Snowflake account) during a materialization."""


class RevisionError(DbtAssetsError):
    """A base revision to compare with cannot be read (no git repository, an unknown revision)
    or its tree could not be built and loaded by the plugin."""
