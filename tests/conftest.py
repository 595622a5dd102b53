"""pytester runs are in-process (fast: dagster, dagster-dbt and dbt are imported once here);
pytester restores sys.modules after each run, so every user repo's modules are fresh."""

from __future__ import annotations

import dagster  # noqa: F401  - imported once for all in-process inner runs
import dagster_dbt  # noqa: F401
import dbt.adapters.duckdb  # noqa: F401
import dbt.adapters.duckdb.connections  # noqa: F401
import dbt.cli.main  # noqa: F401
import duckdb  # noqa: F401
import pytest

from tests.repos import SHOP_DAGSTER_FILES, SHOP_DBT_FILES, SHOP_INI, write_files

pytest_plugins = ["pytester"]


@pytest.fixture
def shop_repo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user repo with the `shop` dbt project, its Dagster definitions and a pyproject."""
    write_files(pytester.path, {**SHOP_DBT_FILES, **SHOP_DAGSTER_FILES, "pyproject.toml": SHOP_INI})
    return pytester
