"""pytest-dbt-assets: test dagster-dbt asset graphs and materializations on a throwaway DuckDB."""

from __future__ import annotations

from pytest_dbt_assets.errors import (
    DbtAssetsError,
    DbtCommandError,
    DbtParseError,
    DefinitionsError,
    MaterializationError,
    ProjectNotFoundError,
    SelectionError,
    SeveralProjectsError,
    SourceDataError,
)
from pytest_dbt_assets.graph import AssetGraph
from pytest_dbt_assets.materialize import Materialization
from pytest_dbt_assets.project import DbtAssetsProject

__version__ = "0.1.0"

__all__ = [
    "AssetGraph",
    "DbtAssetsError",
    "DbtAssetsProject",
    "DbtCommandError",
    "DbtParseError",
    "DefinitionsError",
    "Materialization",
    "MaterializationError",
    "ProjectNotFoundError",
    "SelectionError",
    "SeveralProjectsError",
    "SourceDataError",
    "__version__",
]
