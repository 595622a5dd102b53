import pytest
from jaffle_components.resources import DuckDBWarehouse


@pytest.fixture
def dbt_assets_resources(dbt_assets_project):
    # Point the Python asset's warehouse at the plugin's throwaway DuckDB file.
    return {"warehouse": DuckDBWarehouse(path=str(dbt_assets_project.duckdb_path))}
