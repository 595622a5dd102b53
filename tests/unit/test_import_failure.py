"""definitions.py: an import failure of the user's definitions told as what the user can fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dbt_assets.import_failure import describe_import_failure
from tests.repos import write_files


def test_missing_dbt_is_reported_as_an_environment_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dagster_dbt import DbtCliResource

    write_files(tmp_path, {"dbt_project.yml": "name: shop\n"})
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Exception) as raised:
        DbtCliResource(project_dir=str(tmp_path))
    message = describe_import_failure(
        raised.value, "shop_dagster.definitions", "shop_dagster.definitions:defs", tmp_path
    )
    assert "dbt_executable: The dbt executable 'dbt' was not found on PATH." in message
    assert "set `dbt_executable` to its path." in message  # dagster-dbt's sentence, whole
    assert "This is a problem of the environment, not of your code" in message
    assert "Fix the error in your code" not in message
    assert "errors.pydantic.dev" not in message
