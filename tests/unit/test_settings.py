"""Configuration resolution, without pytest's machinery: call argument > marker > CLI > ini >
default, decided by ``is not None``; paths resolve against where they were written."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_dbt_assets.dbt.supervisor import folder_to_find_dbt
from pytest_dbt_assets.errors import MarkerError
from pytest_dbt_assets.fixtures import call_arguments, source_rows, validate_marker
from pytest_dbt_assets.settings import RUNNERS, Settings, resolve_settings


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A rootdir, the folder of the ini file, and the folder pytest was started from."""
    found = {name: tmp_path / name for name in ("root", "ini", "cwd")}
    for folder in found.values():
        folder.mkdir()
    return found


def resolve(dirs: dict[str, Path], cli: dict[str, str | None] | None = None, **ini: str | None) -> Settings:
    return resolve_settings(
        rootdir=dirs["root"], ini_dir=dirs["ini"], invocation_dir=dirs["cwd"], cli=cli or {}, ini=ini
    )


def test_defaults_without_any_setting(dirs: dict[str, Path]) -> None:
    settings = resolve(dirs)
    assert settings == Settings(rootdir=dirs["root"], project_dir=None, definitions=None, data_dir=None)
    assert (settings.runner, settings.mermaid, settings.summary) == ("worker", False, False)


def test_project_dir_defaults_to_a_rootdir_holding_dbt_project_yml(dirs: dict[str, Path]) -> None:
    (dirs["root"] / "dbt_project.yml").write_text("name: shop\n")
    assert resolve(dirs).project_dir == dirs["root"]
    assert resolve(dirs, project_dir="dbt").project_dir == dirs["ini"] / "dbt", "ini wins over the default"


def test_cli_wins_over_ini_and_resolves_against_the_invocation_dir(dirs: dict[str, Path]) -> None:
    settings = resolve(
        dirs,
        cli={"project_dir": "from_cli", "definitions": "cli.defs:defs", "data_dir": "../data"},
        project_dir="from_ini",
        definitions="ini.defs:defs",
        data_dir="ini_data",
    )
    assert settings.project_dir == dirs["cwd"] / "from_cli"
    assert settings.definitions == "cli.defs:defs"
    assert settings.data_dir == (dirs["cwd"] / "../data").resolve()


def test_ini_resolves_against_the_ini_files_folder(dirs: dict[str, Path]) -> None:
    settings = resolve(dirs, cli={"project_dir": None}, project_dir="shop", data_dir="shop/data")
    assert settings.project_dir == dirs["ini"] / "shop"
    assert settings.data_dir == dirs["ini"] / "shop" / "data"


def test_an_empty_ini_value_is_no_value(dirs: dict[str, Path]) -> None:
    """pytest gives an ini key written without a value as ""; it must not become the ini folder."""
    assert resolve(dirs, project_dir="", definitions="", data_dir="") == resolve(dirs)


def test_absolute_paths_stay_as_written(dirs: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    assert resolve(dirs, cli={"data_dir": str(elsewhere)}).data_dir == elsewhere
    assert resolve(dirs, project_dir=str(elsewhere)).project_dir == elsewhere


@pytest.mark.parametrize("runner", RUNNERS)
def test_runner_values(dirs: dict[str, Path], runner: str) -> None:
    assert resolve(dirs, runner=runner).runner == runner
    other = next(name for name in RUNNERS if name != runner)
    assert resolve(dirs, cli={"runner": runner}, runner=other).runner == runner, "CLI wins over ini"


def test_an_unknown_runner_names_the_choices(dirs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"dbt_assets_runner = 'fork': choose one of worker, subprocess\."):
        resolve(dirs, cli={"runner": "fork"})


def test_flags(dirs: dict[str, Path]) -> None:
    def flags(**values: bool) -> Settings:
        return resolve_settings(
            rootdir=dirs["root"], ini_dir=dirs["ini"], invocation_dir=dirs["cwd"], cli={}, ini={}, flags=values
        )

    assert (flags().mermaid, flags().summary) == (False, False)
    assert (flags(mermaid=True).mermaid, flags(mermaid=True).summary) == (True, False)
    assert flags(summary=True).summary is True


def test_settings_are_frozen(dirs: dict[str, Path]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolve(dirs).runner = "subprocess"  # type: ignore[misc]


# call argument > marker -----------------------------------------------------------------------


def test_the_marker_fills_what_the_call_leaves_out() -> None:
    marker = {"select": "group:marts", "vars": {"day": 1}, "indirect_selection": "cautious"}
    call = {"select": None, "dbt_select": None, "vars": None, "indirect_selection": None}
    assert call_arguments(call, marker) == {
        "select": "group:marts",
        "dbt_select": None,
        "vars": {"day": 1},
        "indirect_selection": "cautious",
    }


def test_a_call_argument_wins_even_when_falsy() -> None:
    """`is not None`: an empty vars mapping or an empty selection given in the call is the
    call's choice, not a reason to take the marker's."""
    marker = {"select": "group:marts", "vars": {"day": 1}, "indirect_selection": "cautious"}
    call: dict[str, Any] = {"select": [], "dbt_select": None, "vars": {}, "indirect_selection": "eager"}
    assert call_arguments(call, marker) == call


def test_select_and_dbt_select_come_together() -> None:
    """A call naming a dbt selection takes neither selection from the marker (no union of a
    test's own selection with the marker's)."""
    marker = {"select": "group:marts", "dbt_select": "tag:daily"}
    resolved = call_arguments({"select": None, "dbt_select": "+customers"}, marker)
    assert (resolved["select"], resolved["dbt_select"]) == (None, "+customers")
    resolved = call_arguments({"select": "orders", "dbt_select": None}, marker)
    assert (resolved["select"], resolved["dbt_select"]) == ("orders", None)


def test_without_a_marker_the_call_is_taken_as_it_is() -> None:
    call = {"select": None, "dbt_select": None, "vars": None, "indirect_selection": None}
    assert call_arguments(call, {}) == call


def test_marker_rows_win_over_the_fixtures_table_by_table() -> None:
    fixture = {"shop.customers": [{"id": 1}], "shop.orders": [{"id": 10}]}
    marker = {"data": {"shop.orders": [{"id": 11}]}}
    assert source_rows(fixture, marker) == {"shop.customers": [{"id": 1}], "shop.orders": [{"id": 11}]}
    assert source_rows(fixture, {"data": None}) == fixture


# finding dbt beside Python -------------------------------------------------------------------


def test_dbt_beside_python_is_found_when_path_has_none(tmp_path: Path) -> None:
    beside = Path(sys.executable).parent
    if not (beside / "dbt").exists():
        pytest.fail(f"the test environment must have dbt beside {sys.executable}")
    assert folder_to_find_dbt(str(tmp_path), sys.executable) == str(beside)


def test_path_with_dbt_is_left_alone(tmp_path: Path) -> None:
    beside = str(Path(sys.executable).parent)
    assert folder_to_find_dbt(beside, sys.executable) is None


def test_no_dbt_beside_python_changes_nothing(tmp_path: Path) -> None:
    assert folder_to_find_dbt(str(tmp_path), str(tmp_path / "python")) is None


def test_a_misspelt_marker_keyword_is_an_error_naming_the_one_meant() -> None:
    validate_marker((), {"dbt_select": "+customers", "baseline": True, "row_tolerance": {"relative": 0.1}})
    with pytest.raises(MarkerError, match=r"dbt_assets\(selct=\.\.\.\) is not an argument.*Did you mean select=\?"):
        validate_marker((), {"selct": "customers"})
    with pytest.raises(MarkerError, match="takes keywords only"):
        validate_marker(("+customers",), {})


def test_the_public_types_import_from_the_package() -> None:
    """What a test annotates its fixtures with: importable from the package, listed in __all__."""
    import pytest_dbt_assets

    for name in (
        "MaterializeAssets",
        "Materialization",
        "DbtAssetsProject",
        "AssetGraph",
        "DbtAssetsSnapshotAssertion",
    ):
        assert name in pytest_dbt_assets.__all__
        assert isinstance(getattr(pytest_dbt_assets, name), type), name
