"""The manifest cache: warm sessions do not parse; stale or damaged entries are rebuilt."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_dbt_assets.cache import (
    read_entry,
)
from tests.repos import SHOP_DBT_FILES, write_files

SHOP_CUSTOMERS_SQL = textwrap.dedent(SHOP_DBT_FILES["shop/models/marts/customers.sql"]).lstrip()

# Fresh clones and what the plugin keeps in the project's cache: each session keeps its own.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("own_cache")]

GRAPH_TEST = """
    def test_graph(dbt_asset_graph):
        assert "acme/marts/customers" in dbt_asset_graph.keys
"""


def _entries(repo: pytest.Pytester) -> list[Path]:
    return sorted((repo.path / "shop/target/dbt_assets_cache").glob("*.json"))


def test_warm_session_runs_no_parse_and_a_changed_or_damaged_entry_parses_again(
    shop_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_dbt_assets import manifest

    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_TEST})
    shop_repo.runpytest().assert_outcomes(passed=1)
    [entry] = _entries(shop_repo)
    # Warm: the session passes from the cache alone. The patch is made here, not in a conftest of
    # the inner run: the plugin parses before any conftest loads (inner runs share these modules).
    with monkeypatch.context() as refusing:
        refusing.setattr(manifest, "parse_project", _refuse_to_parse)
        shop_repo.runpytest().assert_outcomes(passed=1)

    # Same checksum, damaged content: as if a disk or a tool had changed it.
    envelope = json.loads(entry.read_text())
    envelope["manifest"] = envelope["manifest"].replace("customers", "clients")
    entry.write_text(json.dumps(envelope))
    shop_repo.runpytest().assert_outcomes(passed=1)
    # Half-written: cut in the middle.
    entry.write_text(entry.read_text()[: len(entry.read_text()) // 2])
    shop_repo.runpytest().assert_outcomes(passed=1)
    assert read_entry(entry, entry.stem) is not None
    assert _entries(shop_repo) == [entry]

    # A changed project file: parsed again, into a second entry.
    write_files(shop_repo.path, {"shop/models/marts/refunds.sql": "select 1 as id"})
    write_files(
        shop_repo.path,
        {
            "tests/test_graph.py": GRAPH_TEST
            + """
    def test_new_model(dbt_asset_graph):
        assert "acme/marts/refunds" in dbt_asset_graph.keys
    """
        },
    )
    shop_repo.runpytest().assert_outcomes(passed=2)
    assert len(_entries(shop_repo)) == 2


SEED_ROWS_TEST = """
    def test_seeds_load(dbt_assets_materialize, dbt_assets_project):
        assert dbt_assets_materialize(dbt_select="+customers +orders").success
        assert dbt_assets_project.query("select count(*) from raw_customers") == [(3,)]
"""


def test_worker_starts_from_the_start_up_parse_also_of_a_deleted_session(shop_repo: pytest.Pytester) -> None:
    """The dbt worker does not parse the project a second time: it starts from the partial-parse
    file of the parse the plugin made at start-up (cached beside the manifest), dbt accepts it,
    and seeds still load from the session's folder (dbt keeps their absolute path). A later
    session (its manifest from the cache, no parse at start-up) starts from the partial-parse
    file the first session's start-up parse cached, after that session's folder is gone."""
    import shutil

    from pytest_dbt_assets.dbt.partial_parse import CACHE_NOTE

    write_files(shop_repo.path, {"tests/test_seeds.py": SEED_ROWS_TEST})
    first, second = shop_repo.path / "first", shop_repo.path / "second"
    shop_repo.runpytest(f"--basetemp={first}").assert_outcomes(passed=1)
    [note] = first.rglob(CACHE_NOTE)
    first_note = note.read_text()
    made_in, verdict, source = first_note.splitlines()
    assert made_in.startswith("made in ") and "pytest-dbt-assets-" in made_in
    assert not Path(made_in.removeprefix("made in ")).exists()  # the start-up copy became the session's
    assert (verdict, source) == ("used by dbt", "from the plugin's start-up parse")
    # dbt accepted it, so the worker cached no parse of its own
    assert not list((shop_repo.path / "shop/target/dbt_assets_cache/partial_parse").glob("*.msgpack"))
    cached = sorted((shop_repo.path / "shop/target/dbt_assets_cache/early_parse").glob("*.msgpack"))
    assert len(cached) == 1

    shutil.rmtree(first)
    shop_repo.runpytest(f"--basetemp={second}").assert_outcomes(passed=1)
    [note] = second.rglob(CACHE_NOTE)
    assert note.read_text() == first_note  # made in the first session's start-up copy
    assert note.read_text().splitlines()[1] == "used by dbt"


def test_a_cache_folder_of_its_own_serves_a_fresh_clone_and_leaves_target_empty(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dbt-assets-cache-dir` (a folder CI keeps between jobs): a second checkout of the same
    project, elsewhere, runs no parse, and no cache is written under either project's target/."""
    from pytest_dbt_assets import manifest
    from tests.repos import SHOP_DAGSTER_FILES, SHOP_DBT_FILES, SHOP_INI

    cache = pytester.path / "ci-cache"
    for clone in ("first", "second"):
        root = pytester.path / clone
        write_files(root, {**SHOP_DBT_FILES, **SHOP_DAGSTER_FILES, "pyproject.toml": SHOP_INI})
        write_files(root, {"tests/test_graph.py": GRAPH_TEST})
        if clone == "second":  # inner runs share this process's modules: no parse may run now
            monkeypatch.setattr(manifest, "parse_project", _refuse_to_parse)
        monkeypatch.chdir(root)
        pytester.runpytest(f"--dbt-assets-cache-dir={cache}").assert_outcomes(passed=1)
        assert not (root / "shop/target/dbt_assets_cache").exists()
    assert len(list((cache / "shop").glob("*.json"))) == 1


EDITED_MART_TEST = """
    def test_seeds_and_the_edit(dbt_assets_materialize, dbt_assets_project):
        assert dbt_assets_materialize(dbt_select="+customers").success
        assert dbt_assets_project.query("select count(*) from raw_customers") == [(3,)]
        assert dbt_assets_project.query("select count(*) from customers") == [({rows},)]
"""


def test_an_edited_project_is_parsed_from_the_earlier_start_up_parse(shop_repo: pytest.Pytester) -> None:
    """After an edit, the start-up parse starts from the partial-parse file of the earlier one,
    so dbt parses again only what changed; the edit is built, seeds load from the session's
    folder (dbt keeps their absolute path), the user's manifest names no temporary folder, and
    the worker starts from the same file. A changed dbt_project.yml makes dbt parse in full, and
    that parse is what later ones with the same dbt_project.yml start from; with the old one
    back, a parse starts from the newest file made with it."""
    from pytest_dbt_assets.dbt.partial_parse import CACHE_NOTE

    early = shop_repo.path / "shop/target/dbt_assets_cache/early_parse"
    user_manifest = shop_repo.path / "shop/target/manifest.json"

    def run(name: str, rows: int) -> tuple[str, str]:
        """The session's start-up parse entry's folder and its worker's note."""
        write_files(shop_repo.path, {"tests/test_edit.py": EDITED_MART_TEST.format(rows=rows)})
        before = set(early.glob("*.json")) if early.is_dir() else set()
        shop_repo.runpytest(f"--basetemp={shop_repo.path / name}").assert_outcomes(passed=1)
        [entry] = set(early.glob("*.json")) - before
        assert "pytest-dbt-assets-" not in user_manifest.read_text()
        [note] = (shop_repo.path / name).rglob(CACHE_NOTE)
        return json.loads(entry.read_text())["made_in"], note.read_text()

    first, _ = run("first", rows=3)
    # Only the customers who ordered twice: a model's SQL changed.
    write_files(
        shop_repo.path,
        {
            "shop/models/marts/customers.sql": SHOP_CUSTOMERS_SQL + "having count(o.order_id) > 1\n",
        },
    )
    edited, note = run("edited", rows=1)
    assert edited == first  # started from the first session's file, which dbt accepted
    assert note.splitlines() == [f"made in {first}", "used by dbt", "from the plugin's start-up parse"]

    # A new var in dbt_project.yml: dbt would refuse those files; it parses in full.
    project_yml = shop_repo.path / "shop/dbt_project.yml"
    original_yml = project_yml.read_text()
    project_yml.write_text(original_yml + "vars:\n  unused: 1\n")
    refused, note = run("refused", rows=1)
    assert refused != first and "pytest-dbt-assets-" in refused
    assert note.splitlines() == [f"made in {refused}", "used by dbt", "from the plugin's start-up parse"]

    # The old dbt_project.yml back (a branch switched back) and the model edited again: the
    # parse starts from the first session's file, not from the newer one dbt would refuse.
    project_yml.write_text(original_yml)
    customers = shop_repo.path / "shop/models/marts/customers.sql"
    customers.write_text(customers.read_text() + "-- edited again\n")
    back, _ = run("back", rows=1)
    assert back == first


def _refuse_to_parse(project: object, **_: object) -> None:
    raise AssertionError("dbt parse ran, the cache was not used")
