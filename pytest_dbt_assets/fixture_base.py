"""What the plugin's fixtures share, below them all: the session object in ``config.stash``,
the marker's keyword arguments, and failing a test with the plugin's message only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import pytest

from pytest_dbt_assets.errors import DbtAssetsError
from pytest_dbt_assets.session import DbtAssetsSession

# The session object: settings, the manifest made in pytest_load_initial_conftests, the worker.
SESSION_KEY = pytest.StashKey[DbtAssetsSession]()
MARKER = "dbt_assets"


def session_of(config: pytest.Config) -> DbtAssetsSession:
    """The config's session object (made by ``plugin.py`` in its first hook, or at configure)."""
    return config.stash[SESSION_KEY]


def fail(error: DbtAssetsError) -> NoReturn:
    """Fail the test with the plugin's message only: no traceback of the plugin's code."""
    __tracebackhide__ = True
    # `from None`: called inside `except`, and pytest would print the error again as context.
    raise pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False) from None


def source_rows(fixture: Mapping[str, Any], marker: Mapping[str, Any]) -> dict[str, Any]:
    """Source rows for a test: the ``dbt_assets_data`` fixture's, with the marker's ``data=``
    winning table by table."""
    return {**fixture, **(marker.get("data") or {})}


def marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of the test's closest ``@pytest.mark.dbt_assets(...)``."""
    marker = request.node.get_closest_marker(MARKER)
    return dict(marker.kwargs) if marker else {}
