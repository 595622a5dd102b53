"""One error hierarchy: every message says what happened, where, and how to fix it."""

from __future__ import annotations


class DbtAssetsError(Exception):
    """Base class of every error the plugin raises on purpose."""


class ProjectNotFoundError(DbtAssetsError):
    """The configured folder holds no dbt_project.yml."""


class DbtCommandError(DbtAssetsError):
    """A dbt command (parse, deps, seed, ...) against the temporary project failed."""


class DbtParseError(DbtCommandError):
    """dbt could not parse the project: YAML, Jinja, unknown ref, cycle, ..."""


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
        self.failures = failures


class DbtWorkerError(DbtAssetsError):
    """The warm dbt worker did not start, or died a second time in the session."""


class DbtWorkerRestartedWarning(UserWarning):
    """The warm dbt worker died (e.g. killed by the out-of-memory killer) and was restarted."""
