"""pytest_dbt_assets.diff.changed: a test's reach, the cached record and its merge, and the
decision to run or deselect a test with its reason; changed files from a real git repo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pytest_dbt_assets.diff.changed import (
    Change,
    Reach,
    build_change,
    build_reach,
    changed_files,
    decide,
    load_records,
    merge_records,
    relevant_files,
)
from pytest_dbt_assets.errors import RevisionError

STG_ORDERS = "acme/staging/stg_orders"
ORDERS = "acme/marts/orders"
CUSTOMERS = "acme/marts/customers"
STG_CUSTOMERS = "acme/staging/stg_customers"
TEST_FILES = relevant_files("tests/marts/test_orders.py")


def change(**given: object) -> Change:
    defaults: dict[str, object] = {
        "touched": [STG_ORDERS, ORDERS],
        "added": [],
        "parents": {},
        "graph_changed": True,
        "files": ["shop/models/staging/stg_orders.sql"],
    }
    return build_change("main", **{**defaults, **given})  # type: ignore[arg-type]


# -- the reach ----------------------------------------------------------------------------


def test_a_materializing_test_reaches_the_keys_it_selected() -> None:
    reach = build_reach([ORDERS, STG_ORDERS, ORDERS], ["dbt_assets_materialize"], ["dbt_assets_defs"])
    assert reach == Reach(keys=(ORDERS, STG_ORDERS))


def test_asking_for_the_graph_or_the_project_reaches_everything() -> None:
    reach = build_reach([ORDERS], ["dbt_asset_graph", "dbt_assets_project", "snapshot"], [])
    assert reach.everything == ("dbt_asset_graph", "dbt_assets_project")


def test_the_graph_a_materialization_pulls_in_is_not_asked_for() -> None:
    closure = ["dbt_assets_materialize", "dbt_assets_defs", "dbt_assets_projects", "dbt_assets_dbt_executable"]
    assert build_reach([ORDERS], ["dbt_assets_materialize"], closure).everything == ()


def test_a_test_that_built_nothing_but_uses_the_graph_through_its_own_fixture_reaches_everything() -> None:
    reach = build_reach([], ["graph"], ["graph", "dbt_asset_graph", "dbt_assets_defs"])
    assert reach.everything == ("dbt_asset_graph", "dbt_assets_defs")


def test_a_reach_survives_the_trip_through_json() -> None:
    reach = Reach(keys=(ORDERS,), everything=("dbt_asset_graph",), failed=True)
    assert Reach.from_plain(reach.to_plain()) == reach


# -- the record ---------------------------------------------------------------------------


def test_a_test_that_ran_replaces_its_record_and_the_others_keep_theirs() -> None:
    old = {"tests/test_a.py::test_a": Reach(keys=(ORDERS,)), "tests/test_b.py::test_b": Reach(keys=(CUSTOMERS,))}
    merged = merge_records(old, {"tests/test_a.py::test_a": Reach(keys=(STG_ORDERS,))})
    assert load_records(merged) == {
        "tests/test_a.py::test_a": Reach(keys=(STG_ORDERS,)),
        "tests/test_b.py::test_b": Reach(keys=(CUSTOMERS,)),
    }
    assert list(merged["tests"]) == sorted(merged["tests"])


@pytest.mark.parametrize("raw", [None, [], {"version": 0, "tests": {}}, {"version": 1, "tests": "?"}])
def test_a_record_it_cannot_read_counts_as_none(raw: object) -> None:
    assert load_records(raw) == {}


# -- the decision -------------------------------------------------------------------------


def test_a_test_whose_reach_meets_the_change_runs() -> None:
    decision = decide(Reach(keys=(CUSTOMERS, ORDERS)), change(), TEST_FILES)
    assert decision.run and decision.reason == f"reaches {ORDERS}, changed since main"


def test_a_test_whose_reach_misses_the_change_is_deselected_with_what_it_reaches() -> None:
    decision = decide(Reach(keys=(CUSTOMERS, STG_CUSTOMERS)), change(), TEST_FILES)
    assert not decision.run
    assert decision.reason == f"reaches {CUSTOMERS}, {STG_CUSTOMERS}; nothing it reaches changed since main"


def test_a_long_reach_is_told_short() -> None:
    keys = tuple(f"acme/marts/m{number}" for number in range(5))
    reason = decide(Reach(keys=keys), change(), TEST_FILES).reason
    assert reason.startswith("reaches acme/marts/m0, acme/marts/m1, acme/marts/m2 and 2 more;")


def test_a_test_with_no_record_runs() -> None:
    assert decide(None, change(), TEST_FILES).run


def test_a_test_that_failed_last_time_runs() -> None:
    decision = decide(Reach(keys=(CUSTOMERS,), failed=True), change(), TEST_FILES)
    assert decision.run and "failed" in decision.reason


@pytest.mark.parametrize("changed", ["tests/marts/test_orders.py", "tests/conftest.py", "conftest.py"])
def test_a_test_whose_file_or_a_conftest_above_it_changed_runs(changed: str) -> None:
    decision = decide(Reach(keys=(CUSTOMERS,)), change(files=[changed]), TEST_FILES)
    assert decision.run and decision.reason == f"{changed} changed since main"


def test_a_conftest_beside_another_folder_does_not_count() -> None:
    assert not decide(Reach(keys=(CUSTOMERS,)), change(files=["tests/staging/conftest.py"]), TEST_FILES).run


def test_a_test_that_reaches_everything_runs_when_the_graph_changed_and_only_then() -> None:
    reach = Reach(everything=("dbt_asset_graph",))
    ran = decide(reach, change(touched=[], graph_changed=True), TEST_FILES)
    assert ran.run and ran.reason == "asks for dbt_asset_graph; the asset graph changed since main"
    skipped = decide(reach, change(touched=[], graph_changed=False), TEST_FILES)
    assert not skipped.run
    assert skipped.reason == "asks for dbt_asset_graph; the asset graph did not change since main"


def test_a_test_that_reached_the_parent_of_an_added_asset_runs() -> None:
    new = "acme/marts/order_totals"
    added = change(touched=[new], added=[new], parents={new: [STG_ORDERS]})
    decision = decide(Reach(keys=(STG_ORDERS,)), added, TEST_FILES)
    assert decision.run and decision.reason == f"reaches a parent of {new}, added since main"
    assert not decide(Reach(keys=(CUSTOMERS,)), added, TEST_FILES).run


def test_changed_source_data_runs_every_test_that_reaches_assets() -> None:
    data = change(touched=[], graph_changed=False, files=["data/shop/orders.csv"], data_dir="data")
    assert data.data_changed
    assert decide(Reach(keys=(CUSTOMERS,)), data, TEST_FILES).run
    assert not decide(Reach(), data, TEST_FILES).run
    assert not change(files=["data/shop/orders.csv"], data_dir="seeds").data_changed


def test_a_change_survives_the_trip_to_a_worker() -> None:
    new = "acme/marts/order_totals"
    given = change(added=[new], parents={new: [STG_ORDERS]}, data_dir="shop")
    assert Change.from_plain(given.to_plain()) == given


def test_the_files_of_a_test_are_its_module_and_each_conftest_above_it() -> None:
    assert relevant_files("tests/marts/test_orders.py") == [
        "tests/marts/test_orders.py",
        "tests/marts/conftest.py",
        "tests/conftest.py",
        "conftest.py",
    ]
    assert relevant_files("test_top.py") == ["test_top.py", "conftest.py"]


# -- changed files, from git --------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    subprocess.run(["git", *args], cwd=repo, env={**env, "GIT_COMMITTER_EMAIL": "t@e"}, check=True, capture_output=True)


def test_changed_files_are_the_diff_with_the_revision_and_untracked_files(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    for name in ("models/a.sql", "models/b.sql", "old.py", ".gitignore"):
        (tmp_path / name).write_text("select 1\n" if name != ".gitignore" else "*.duckdb\n")
    _git(tmp_path, "init", "--quiet", "--initial-branch=main")
    _git(tmp_path, "add", "--all")
    _git(tmp_path, "commit", "--quiet", "--message=first")
    (tmp_path / "models/a.sql").write_text("select 2\n")  # unstaged
    (tmp_path / "models/b.sql").write_text("select 2\n")
    _git(tmp_path, "add", "models/b.sql")  # staged
    _git(tmp_path, "mv", "old.py", "new.py")  # both sides of a rename
    (tmp_path / "fresh.py").write_text("")  # untracked
    (tmp_path / "prod.duckdb").write_text("")  # ignored
    assert changed_files(tmp_path, "main") == {"models/a.sql", "models/b.sql", "old.py", "new.py", "fresh.py"}
    assert changed_files(tmp_path / "models", "HEAD") == changed_files(tmp_path, "HEAD")


def test_changed_files_of_an_unknown_revision_says_so(tmp_path: Path) -> None:
    _git(tmp_path, "init", "--quiet")
    with pytest.raises(RevisionError, match="against 'origin/main' failed"):
        changed_files(tmp_path, "origin/main")
