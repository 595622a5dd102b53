from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb


class DuckDBWarehouse(dg.ConfigurableResource):
    """Minimal handle on the DuckDB file that dbt writes to; connections are opened per use and
    always closed (DuckDB allows one writer process at a time)."""

    path: str

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = duckdb.connect(self.path)
        try:
            yield conn
        finally:
            conn.close()
