"""Every touch of another package's internals still holds on the installed versions.

One test per shim in the modules of pytest_dbt_assets/compat/, named after it: an upgrade of
dbt, Dagster, dagster-dbt, syrupy, pytest or fakesnow that breaks a touch fails here, naming
the shim and what it used. The checks that call the upstream code are shown to fail, naming
their shim, when that code stops behaving as the shim expects.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_dbt_assets import compat
from pytest_dbt_assets.compat import dbt as dbt_compat


@pytest.mark.parametrize("shim", compat.all_shims(), ids=lambda shim: f"{shim.module.rsplit('.', 1)[1]}.{shim.name}")
def test_shim_holds_on_installed_versions(shim: compat.Shim) -> None:
    assert shim.problem() is None


def test_the_registry_sees_every_shim_of_every_module() -> None:
    """Each ``check_<name>`` of each compat module is registered, for a function ``<name>``
    of that module; and every module of the package is one the registry imports."""
    package = Path(compat.__file__).parent
    assert sorted(path.stem for path in package.glob("*.py") if path.stem != "__init__") == sorted(compat.MODULES)
    registered = {shim.qualified_name for shim in compat.all_shims()}
    for name in compat.MODULES:
        module = importlib.import_module(f"pytest_dbt_assets.compat.{name}")
        checks = [
            attr for attr, value in vars(module).items() if attr.startswith("check_") and inspect.isfunction(value)
        ]
        assert checks, name
        for check in checks:
            shim = check.removeprefix("check_")
            assert f"{module.__name__}.{shim}" in registered, f"{module.__name__}.{check} is not registered"
            assert callable(getattr(module, shim, None)), f"{module.__name__}.{check} checks no function {shim}"
    assert len(registered) == len(compat.all_shims()), "two shims share a name"


def test_importing_compat_imports_no_upstream_package() -> None:
    """The plugin imports compat at start-up: none of its modules may import the packages it
    touches (seconds for dagster and dbt) before a shim is used."""
    script = (
        "import importlib, sys\n"
        "before = set(sys.modules)\n"
        "import pytest_dbt_assets.compat as compat\n"
        "for name in compat.MODULES:\n"
        "    importlib.import_module('pytest_dbt_assets.compat.' + name)\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & "
        "{'dagster', 'dagster_dbt', 'dagster_shared', 'dbt', 'dbt_common', 'syrupy', 'fakesnow', 'snowflake', '_pytest'}))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr


def test_a_version_outside_the_tested_range_names_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = compat.Shim("some_touch", "dbt-core", "dbt.some.internal", lambda: None, "pytest_dbt_assets.compat.dbt")
    monkeypatch.setitem(compat.TESTED, "dbt-core", ((0, 1), (0, 2)))
    problem = shim.problem()
    assert problem is not None
    assert "pytest_dbt_assets.compat.dbt.some_touch" in problem
    assert "outside the versions it was read against (>=0.1,<0.2)" in problem
    assert "dbt.some.internal" in problem


def test_a_failed_check_names_the_shim_and_the_internal() -> None:
    shim = compat.Shim(
        "some_touch",
        "syrupy",
        "SnapshotSession.ran_item",
        lambda: "syrupy has no ran_item",
        "pytest_dbt_assets.compat.syrupy",
    )
    assert shim.problem() == (
        "pytest_dbt_assets.compat.syrupy.some_touch (SnapshotSession.ran_item): syrupy has no ran_item"
    )


def test_tested_ranges_are_pyprojects() -> None:
    """compat.TESTED and pyproject.toml's dependency ranges say the same thing."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
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


def _problem(name: str) -> str | None:
    return compat.find_shim(name).problem()


def test_a_missing_dbt_internal_fails_the_check_naming_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's partial-parse hook: a dbt without ``ManifestLoader.is_partial_parsable``."""
    from dbt.parser.manifest import ManifestLoader

    assert _problem("dbt.partial_parse_ignoring_profile_hash") is None
    monkeypatch.delattr(ManifestLoader, "is_partial_parsable")
    assert _problem("dbt.partial_parse_ignoring_profile_hash") == (
        "pytest_dbt_assets.compat.dbt.partial_parse_ignoring_profile_hash (dbt.parser.manifest.ManifestLoader"
        ".is_partial_parsable(self, manifest), .manifest, Manifest.state_check.profile_hash): "
        "dbt.parser.manifest.ManifestLoader has no is_partial_parsable"
    )


def test_a_dbt_comparing_profiles_elsewhere_fails_the_partial_parse_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behaviour, not names: a dbt that no longer compares ``self.manifest``'s profile hash."""
    from dbt.parser.manifest import ManifestLoader

    def is_partial_parsable(self: Any, manifest: Any) -> tuple[bool, str | None]:
        return (self.saved_profile_hash == manifest.state_check.profile_hash, "profile_changed")

    monkeypatch.setattr(ManifestLoader, "is_partial_parsable", is_partial_parsable)
    problem = _problem("dbt.partial_parse_ignoring_profile_hash")
    assert problem is not None
    assert problem.startswith("pytest_dbt_assets.compat.dbt.partial_parse_ignoring_profile_hash (")
    assert problem.endswith("AttributeError: 'ManifestLoader' object has no attribute 'saved_profile_hash'")


def test_a_missing_dbt_duckdb_internal_fails_the_check_naming_the_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    """release_duckdb's touch: a dbt-duckdb whose connection manager no longer keeps ``_ENV``."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    assert _problem("dbt.close_duckdb_handles") is None
    monkeypatch.delattr(DuckDBConnectionManager, "_ENV")
    problem = _problem("dbt.close_duckdb_handles")
    assert problem is not None
    assert problem.startswith("pytest_dbt_assets.compat.dbt.close_duckdb_handles (")
    assert problem.endswith("dbt.adapters.duckdb.connections.DuckDBConnectionManager has no _ENV")


def test_a_changed_signature_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import dbt.parser.manifest

    def write_manifest(manifest: object, path: str) -> None: ...

    monkeypatch.setattr(dbt.parser.manifest, "write_manifest", write_manifest)
    assert _problem("dbt.write_manifest") == (
        "pytest_dbt_assets.compat.dbt.write_manifest (dbt.parser.manifest.write_manifest(manifest, target_path)): "
        "write_manifest takes (manifest, path)"
    )


def test_the_partial_parse_hook_is_restored() -> None:
    """The wrapper around dbt's ``is_partial_parsable`` is in place only inside the block."""
    from dbt.parser.manifest import ManifestLoader

    original = ManifestLoader.is_partial_parsable
    with dbt_compat.partial_parse_ignoring_profile_hash():
        assert ManifestLoader.is_partial_parsable is not original
    assert ManifestLoader.is_partial_parsable is original


def test_a_syrupy_option_renamed_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """syrupy's options are read from its own ``pytest_addoption``, parsed: a renamed dest fails."""
    import syrupy

    original = syrupy.pytest_addoption

    def renamed(parser: Any) -> None:
        group = parser.getgroup("syrupy")
        addoption = group.addoption

        def add(*opts: str, **attrs: Any) -> None:
            if attrs.get("dest") == "snapshot_dirname":
                attrs["dest"] = "snapshots_dirname"
            addoption(*opts, **attrs)

        group.addoption = add
        original(parser)

    monkeypatch.setattr(syrupy, "pytest_addoption", renamed)
    assert _problem("syrupy.syrupy_option") == (
        "pytest_dbt_assets.compat.syrupy.syrupy_option (the dests update_snapshots, snapshot_dirname, "
        "ignore_file_extensions of syrupy's options): syrupy's options have no dest snapshot_dirname"
    )


def test_a_syrupy_that_ignores_skipped_outcomes_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from syrupy.session import SnapshotSession

    monkeypatch.setattr(SnapshotSession, "ran_item", lambda self, nodeid, outcome: None)
    problem = _problem("syrupy.record_as_skipped")
    assert problem is not None
    assert problem.startswith("pytest_dbt_assets.compat.syrupy.record_as_skipped (config._syrupy")
    assert problem.endswith("a test recorded as skipped reads NOT_RUN")


def test_a_pytest_that_keeps_the_conftest_error_elsewhere_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import _pytest.config

    class ConftestImportFailure(Exception):
        def __init__(self, path: Path, *, cause: Exception) -> None:
            self.path = path
            self.reason = cause

    monkeypatch.setattr(_pytest.config, "ConftestImportFailure", ConftestImportFailure)
    assert _problem("pytest.import_failure_cause") == (
        "pytest_dbt_assets.compat.pytest.import_failure_cause (_pytest.config.ConftestImportFailure.cause): "
        "the user's exception is not its cause"
    )


def test_a_pytest_that_keeps_its_tmp_path_factory_elsewhere_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from _pytest import tmpdir

    monkeypatch.setattr(tmpdir, "pytest_configure", lambda config: None)
    problem = _problem("pytest.session_tmp_path_factory")
    assert problem is not None
    assert problem.startswith("pytest_dbt_assets.compat.pytest.session_tmp_path_factory (config._tmp_path_factory")
    assert "AttributeError" in problem


def test_a_dagster_dbt_that_drops_the_adapter_fails_the_resource_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The isolated resource hands dagster-dbt the adapter it builds: a dagster-dbt that no
    longer passes ``_initialize_dbt_core_adapter``'s result to the invocation fails the check."""
    from dagster_dbt import DbtCliInvocation

    run = DbtCliInvocation.run.__func__  # type: ignore[attr-defined]

    def without_adapter(cls: Any, *args: Any, **kwargs: Any) -> Any:
        return run(cls, *args, **{**kwargs, "adapter": None})

    monkeypatch.setattr(DbtCliInvocation, "run", classmethod(without_adapter))
    assert _problem("dagster_dbt.dbt_cli_resource_with_hooks") == (
        "pytest_dbt_assets.compat.dagster_dbt.dbt_cli_resource_with_hooks (DbtCliResource._cli_version (cached "
        "property), DbtCliResource._initialize_dbt_core_adapter(args) called by cli(args), its result passed to "
        "DbtCliInvocation.adapter): the invocation does not hold the adapter cli() built"
    )
