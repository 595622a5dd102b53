"""pytest-dbt-assets: test dagster-dbt asset graphs and materializations on a throwaway DuckDB."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.errors import (
    DbtAssetsError,
    DbtCommandError,
    DbtParseError,
    DefinitionsError,
    MarkerError,
    MaterializationError,
    ProjectNotFoundError,
    RevisionError,
    SelectionError,
    SeveralProjectsError,
    SourceDataError,
)

if TYPE_CHECKING:
    from pytest_dbt_assets.diff.data import DataDiff, TableDiff
    from pytest_dbt_assets.diff.fixtures import DiffAssets
    from pytest_dbt_assets.diff.impact import Impact
    from pytest_dbt_assets.fixtures import MaterializeAssets
    from pytest_dbt_assets.graph import AssetGraph
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject
    from pytest_dbt_assets.snapshot import DbtAssetsSnapshotAssertion

__version__ = "0.1.0"

__all__ = [
    "AssetGraph",
    "DataDiff",
    "DbtAssetsError",
    "DbtAssetsProject",
    "DbtAssetsSnapshotAssertion",
    "DbtCommandError",
    "DbtParseError",
    "DefinitionsError",
    "DiffAssets",
    "Impact",
    "MarkerError",
    "Materialization",
    "MaterializationError",
    "MaterializeAssets",
    "ProjectNotFoundError",
    "RevisionError",
    "SelectionError",
    "SeveralProjectsError",
    "SourceDataError",
    "TableDiff",
    "__version__",
]

# pytest imports this package in every session of every repo where it is installed (the
# plugin's entry point is a submodule): these load on first use, not at start-up.
_LAZY = {
    "AssetGraph": "pytest_dbt_assets.graph",
    "DataDiff": "pytest_dbt_assets.diff.data",
    "TableDiff": "pytest_dbt_assets.diff.data",
    "DiffAssets": "pytest_dbt_assets.diff.fixtures",
    "Impact": "pytest_dbt_assets.diff.impact",
    "DbtAssetsProject": "pytest_dbt_assets.project",
    "Materialization": "pytest_dbt_assets.materialize",
    "MaterializeAssets": "pytest_dbt_assets.fixtures",
    "DbtAssetsSnapshotAssertion": "pytest_dbt_assets.snapshot",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
