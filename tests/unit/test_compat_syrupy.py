"""The syrupy shim (compat.syrupy.record_as_skipped) against the installed syrupy."""

from __future__ import annotations

import pytest

from pytest_dbt_assets import compat
from pytest_dbt_assets.compat.syrupy import record_as_skipped_problem


def test_syrupy_shim_matches_the_installed_syrupy() -> None:
    """Fails, naming the shim, when syrupy changes what compat.syrupy.record_as_skipped relies on."""
    problem = record_as_skipped_problem()
    assert problem is None, f"pytest_dbt_assets.compat.syrupy.record_as_skipped must be re-read: {problem}"


def test_syrupy_shim_names_itself_when_syrupy_is_not_the_one_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(compat.TESTED, "syrupy", ((6, 0), (7, 0)))
    problem = record_as_skipped_problem()
    assert problem is not None and "pytest_dbt_assets.compat.syrupy.record_as_skipped: syrupy" in problem, problem
    assert "outside the versions it was read against (>=6.0,<7.0)" in problem, problem
