"""The last line of isolation, on every backend: while a materialization runs, a login to a
real Snowflake account from this process is refused before any network call.

A Snowflake backend routes ``snowflake.connector.connect`` (and what calls it) to the
emulator, so a real login only happens on a path it cannot route (``SnowflakeConnection(...)``
built directly, a library that imported ``connect`` by name); on the DuckDB backend every
Snowflake login is one. Only a connector that is already imported is guarded: importing it
costs time every session, and code that logs in has imported it by the time it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_dbt_assets.errors import WarehouseConnectionRefused
from pytest_dbt_assets.warehouse.base import OVERRIDE_HINT


@contextmanager
def refusing_snowflake(backend: str) -> Iterator[None]:
    """Inside: ``snowflake.connector.connection.SnowflakeConnection.connect`` (its login)
    raises :class:`WarehouseConnectionRefused`."""
    module = sys.modules.get("snowflake.connector.connection")
    owner = getattr(module, "SnowflakeConnection", None)
    if owner is None:
        yield
        return
    real_login = owner.connect

    def login(self: Any, **kwargs: Any) -> None:
        account = kwargs.get("account") or getattr(self, "_account", None) or "?"
        host = kwargs.get("host") or getattr(self, "_host", None) or f"{account}.snowflakecomputing.com"
        served = (
            "The plugin routes snowflake.connector.connect(), write_pandas() and dagster-snowflake's "
            "SnowflakeResource and I/O managers to the test database; this connection was made another way"
            if backend == "snowflake"
            else "Your dbt profile is not a Snowflake one, so the test database is DuckDB and nothing may log "
            "in to Snowflake"
        )
        raise WarehouseConnectionRefused(
            f"pytest-dbt-assets refused a login to the Snowflake account {account!r} at {host} during a "
            f"materialization: a test never reaches a real warehouse. {served}. {OVERRIDE_HINT}"
        )

    owner.connect = login
    try:
        yield
    finally:
        owner.connect = real_login
