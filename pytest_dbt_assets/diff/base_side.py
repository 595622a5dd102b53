"""What the generated test of a base-revision run does (:mod:`.revision`): load the base's
definitions through the plugin's own fixtures (so the base's conftest overrides apply), record
the graph, materialize what was asked, and export each built relation to Parquet.

It takes pytest's ``request`` but needs nothing else of pytest's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pytest_dbt_assets.diff.export import export_graph
from pytest_dbt_assets.diff.revision import REQUEST_ENV, RESULT_FILE
from pytest_dbt_assets.quiet import quiet_upstream


def _asked() -> dict[str, Any]:
    return json.loads(Path(os.environ[REQUEST_ENV]).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def requested_data() -> dict[str, Any] | None:
    """The asking test's source rows, for the generated test's marker (which wins over the
    base's own ``dbt_assets_data``, table by table, as the asking test's marker did)."""
    return _asked()["data"] or None


def run_base_side(request: Any) -> None:
    """Build what ``$PYTEST_DBT_ASSETS_BASE_REQUEST`` asks and write ``result.json``."""
    asked = _asked()
    out = Path(asked["out"])
    out.mkdir(parents=True, exist_ok=True)
    defs = request.getfixturevalue("dbt_assets_defs")
    with quiet_upstream():
        graph = export_graph(defs, request.getfixturevalue("dbt_asset_graph"))
    result: dict[str, Any] = {"revision": asked["revision"], "graph": graph}
    if asked["materialize"]:
        from pytest_dbt_assets.diff.relations import export_relations  # DuckDB's, only to build

        materialize = request.getfixturevalue("dbt_assets_materialize")
        project = request.getfixturevalue("dbt_assets_project")
        built = materialize(
            asked["select"], dbt_select=asked["dbt_select"], baseline=asked["baseline"], raise_on_error=False
        )
        result["materialization"] = {
            "success": built.success,
            "failures": list(built.failures),
            "materialized": list(built.materialized),
            "row_counts": dict(built.row_counts),
            "relations": export_relations(project, graph, built.materialized, out),
        }
    (out / RESULT_FILE).write_text(json.dumps(result, indent=1, sort_keys=True, default=str), encoding="utf-8")
