"""Every touch of another package's internals still holds on the installed versions.

One test per shim in pytest_dbt_assets/compat.py, named after it: an upgrade of dbt, Dagster,
dagster-dbt or syrupy that breaks a touch fails here, naming the shim and what it used.
"""

from __future__ import annotations

import pytest

from pytest_dbt_assets import compat


@pytest.mark.parametrize("shim", compat.SHIMS, ids=lambda shim: shim.name)
def test_shim_holds_on_installed_versions(shim: compat.Shim) -> None:
    assert shim.problem() is None


def test_a_version_outside_the_tested_range_names_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = compat.Shim("some_touch", "dbt-core", "dbt.some.internal", lambda: None)
    monkeypatch.setitem(compat.TESTED, "dbt-core", ((0, 1), (0, 2)))
    problem = shim.problem()
    assert problem is not None
    assert "pytest_dbt_assets.compat.some_touch" in problem
    assert "outside the versions it was read against (>=0.1,<0.2)" in problem
    assert "dbt.some.internal" in problem


def test_a_failed_check_names_the_shim_and_the_internal() -> None:
    shim = compat.Shim("some_touch", "syrupy", "SnapshotSession.ran_item", lambda: "syrupy has no ran_item")
    assert shim.problem() == ("pytest_dbt_assets.compat.some_touch (SnapshotSession.ran_item): syrupy has no ran_item")


def test_tested_ranges_are_pyprojects() -> None:
    """compat.TESTED and pyproject.toml's dependency ranges say the same thing."""
    import re
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    declared: dict[str, tuple[tuple[int, ...], ...]] = {}
    extras = pyproject["project"]["optional-dependencies"]["snowflake"]
    for requirement in [*pyproject["project"]["dependencies"], *extras]:
        match = re.fullmatch(r"([A-Za-z0-9-]+)>=([\d.]+),<([\d.]+)", requirement)
        assert match, requirement
        # The base dependencies' ranges: an extra may narrow one (snowflake: dagster-dbt>=0.29.26).
        declared.setdefault(match[1], tuple(tuple(int(part) for part in end.split(".")) for end in match.groups()[1:]))
    for package, (low, high) in compat.TESTED.items():
        padded = tuple(end + (0,) * (3 - len(end)) for end in (low, high))
        assert tuple(end + (0,) * (3 - len(end)) for end in declared[package]) == padded, package


def _shim(name: str) -> compat.Shim:
    [found] = [item for item in compat.SHIMS if item.name == name]
    return found


def test_a_missing_dbt_internal_fails_the_check_naming_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's partial-parse hook: a dbt without ``ManifestLoader.is_partial_parsable``."""
    from dbt.parser.manifest import ManifestLoader

    shim = _shim("partial_parse_ignoring_profile_hash")
    assert shim.problem() is None
    monkeypatch.delattr(ManifestLoader, "is_partial_parsable")
    assert shim.problem() == (
        "pytest_dbt_assets.compat.partial_parse_ignoring_profile_hash (dbt.parser.manifest.ManifestLoader"
        ".is_partial_parsable(self, manifest), .manifest, Manifest.state_check.profile_hash): "
        "dbt.parser.manifest.ManifestLoader has no is_partial_parsable"
    )


def test_a_missing_dbt_duckdb_internal_fails_the_check_naming_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    """release_duckdb's touch: a dbt-duckdb whose connection manager no longer keeps ``_ENV``."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    shim = _shim("close_duckdb_handles")
    assert shim.problem() is None
    monkeypatch.delattr(DuckDBConnectionManager, "_ENV")
    problem = shim.problem()
    assert problem is not None
    assert problem.startswith("pytest_dbt_assets.compat.close_duckdb_handles (")
    assert problem.endswith("dbt.adapters.duckdb.connections.DuckDBConnectionManager has no _ENV")


def test_a_changed_signature_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import dbt.parser.manifest

    def write_manifest(manifest: object, path: str) -> None: ...

    monkeypatch.setattr(dbt.parser.manifest, "write_manifest", write_manifest)
    assert _shim("write_manifest").problem() == (
        "pytest_dbt_assets.compat.write_manifest (dbt.parser.manifest.write_manifest(manifest, target_path)): "
        "write_manifest takes (manifest, path)"
    )


def test_the_partial_parse_hook_is_restored() -> None:
    """The wrapper around dbt's ``is_partial_parsable`` is in place only inside the block."""
    from dbt.parser.manifest import ManifestLoader

    original = ManifestLoader.is_partial_parsable
    with compat.partial_parse_ignoring_profile_hash():
        assert ManifestLoader.is_partial_parsable is not original
    assert ManifestLoader.is_partial_parsable is original
