"""failures.py: reading dbt's run results."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_dbt_assets.failures import read_run_results


def test_run_results_cut_short_by_an_interrupted_dbt_are_skipped(tmp_path: Path) -> None:
    """A dbt stopped with SIGINT while it wrote run_results.json leaves the file cut short
    (seen in CI, when a step failed as dbt finished); the other commands' results are read,
    each sorted by node id."""
    results = [
        {"unique_id": "model.shop.orders", "status": "success"},
        {"unique_id": "model.shop.a", "status": "error"},
    ]
    whole = json.dumps({"metadata": {}, "results": results})
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1" / "run_results.json").write_text(whole, encoding="utf-8")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "run_results.json").write_text(whole[: len(whole) // 2], encoding="utf-8")

    found = read_run_results(tmp_path)

    assert found == [(tmp_path / "run-1", sorted(results, key=lambda item: item["unique_id"]))]
