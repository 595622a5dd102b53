"""The manifest cache: warm sessions do not parse; stale or damaged entries are rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_dbt_assets.cache import (
    PLACEHOLDER,
    cached_manifest_text,
    fingerprint,
    read_entry,
    read_partial_parse,
    write_entry,
    write_partial_parse,
)
from tests.repos import write_files

GRAPH_TEST = """
    def test_graph(dbt_asset_graph):
        assert "acme/marts/customers" in dbt_asset_graph.keys
"""

# Makes any dbt parse in the session fail loudly: the run passes only from the cache.
NO_PARSE_CONFTEST = """
    import pytest_dbt_assets.manifest as manifest

    _real = manifest.parse_project

    def _refuse(project):
        raise AssertionError("dbt parse ran, the cache was not used")

    def pytest_configure(config):
        manifest.parse_project = _refuse

    def pytest_unconfigure(config):  # inner runs share this process with the next tests
        manifest.parse_project = _real
"""


def _entries(repo: pytest.Pytester) -> list[Path]:
    return sorted((repo.path / "shop/target/dbt_assets_cache").glob("*.json"))


def test_warm_session_runs_no_parse(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_TEST})
    shop_repo.runpytest().assert_outcomes(passed=1)
    assert len(_entries(shop_repo)) == 1
    write_files(shop_repo.path, {"tests/conftest.py": NO_PARSE_CONFTEST})
    shop_repo.runpytest().assert_outcomes(passed=1)


def test_changed_project_file_parses_again(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_TEST})
    shop_repo.runpytest().assert_outcomes(passed=1)
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


def test_corrupted_entry_is_rebuilt_not_trusted(shop_repo: pytest.Pytester) -> None:
    write_files(shop_repo.path, {"tests/test_graph.py": GRAPH_TEST})
    shop_repo.runpytest().assert_outcomes(passed=1)
    [entry] = _entries(shop_repo)
    envelope = json.loads(entry.read_text())
    # Same checksum, damaged content: as if a disk or a tool had changed it.
    envelope["manifest"] = envelope["manifest"].replace("customers", "clients")
    entry.write_text(json.dumps(envelope))
    shop_repo.runpytest().assert_outcomes(passed=1)
    # Half-written: cut in the middle.
    entry.write_text(entry.read_text()[: len(entry.read_text()) // 2])
    shop_repo.runpytest().assert_outcomes(passed=1)
    assert read_entry(entry, entry.stem) is not None


def test_fingerprint_follows_files_and_referenced_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, {"dbt_project.yml": "name: p\n", "models/a.sql": "select '{{ env_var(\"REGION\") }}'"})
    monkeypatch.setenv("REGION", "eu")
    base = fingerprint(tmp_path, profile="p", target="t")
    assert fingerprint(tmp_path, profile="p", target="t") == base
    monkeypatch.setenv("UNRELATED", "x")
    assert fingerprint(tmp_path, profile="p", target="t") == base
    monkeypatch.setenv("REGION", "us")
    assert fingerprint(tmp_path, profile="p", target="t") != base
    monkeypatch.setenv("REGION", "eu")
    (tmp_path / "models/a.sql").write_text("select 2")
    assert fingerprint(tmp_path, profile="p", target="t") != base
    assert fingerprint(tmp_path, profile="p", target="other") != fingerprint(tmp_path, profile="p", target="t")


def test_entries_store_no_temp_path(tmp_path: Path) -> None:
    project = tmp_path / "session-1" / "project"
    calls = []

    def parse() -> str:
        calls.append(1)
        return json.dumps({"nodes": {"a": {"root_path": str(project)}}})

    text, hit = cached_manifest_text(tmp_path / "cache", "k", project, parse)
    assert not hit and calls == [1]
    stored = (tmp_path / "cache/k.json").read_text()
    assert str(project) not in stored and PLACEHOLDER in stored
    other = tmp_path / "session-2" / "project"
    text, hit = cached_manifest_text(tmp_path / "cache", "k", other, parse)
    assert hit and calls == [1]
    assert json.loads(text)["nodes"]["a"]["root_path"] == str(other)
    write_entry(tmp_path / "cache/k.json", "k", "{}")
    assert read_entry(tmp_path / "cache/k.json", "another-key") is None


SEED_ROWS_TEST = """
    def test_seeds_load(dbt_assets_materialize, dbt_assets_project):
        assert dbt_assets_materialize(dbt_select="+customers +orders").success
        assert dbt_assets_project.query("select count(*) from raw_customers") == [(3,)]
"""


def test_worker_starts_from_the_start_up_parse(shop_repo: pytest.Pytester) -> None:
    """The dbt worker does not parse the project a second time: it starts from the partial-parse
    file of the parse the plugin made at start-up (cached beside the manifest), dbt accepts it,
    and seeds still load from the session's folder (dbt keeps their absolute path)."""
    from pytest_dbt_assets.dbt.partial_parse import CACHE_NOTE

    write_files(shop_repo.path, {"tests/test_seeds.py": SEED_ROWS_TEST})
    first = shop_repo.path / "first"
    shop_repo.runpytest(f"--basetemp={first}").assert_outcomes(passed=1)
    [note] = first.rglob(CACHE_NOTE)
    made_in, verdict, source = note.read_text().splitlines()
    assert made_in.startswith("made in ") and "pytest-dbt-assets-" in made_in
    assert not Path(made_in.removeprefix("made in ")).exists()  # the start-up copy became the session's
    assert (verdict, source) == ("used by dbt", "from the plugin's start-up parse")
    # dbt accepted it, so the worker cached no parse of its own
    assert not list((shop_repo.path / "shop/target/dbt_assets_cache/partial_parse").glob("*.msgpack"))


def test_worker_reuses_partial_parse_from_a_deleted_session(shop_repo: pytest.Pytester) -> None:
    """The dbt worker's parse of a later session (whose manifest comes from the cache, with no
    parse at start-up) starts from the partial-parse file cached by the first session's
    start-up parse; seeds still load, from the new folder (dbt keeps their absolute path)."""
    import shutil

    from pytest_dbt_assets.dbt.partial_parse import CACHE_NOTE

    write_files(shop_repo.path, {"tests/test_seeds.py": SEED_ROWS_TEST})
    first, second = shop_repo.path / "first", shop_repo.path / "second"
    shop_repo.runpytest(f"--basetemp={first}").assert_outcomes(passed=1)
    cached = sorted((shop_repo.path / "shop/target/dbt_assets_cache/early_parse").glob("*.msgpack"))
    assert len(cached) == 1
    first_note = next(first.rglob(CACHE_NOTE)).read_text()
    shutil.rmtree(first)
    shop_repo.runpytest(f"--basetemp={second}").assert_outcomes(passed=1)
    [note] = second.rglob(CACHE_NOTE)
    assert note.read_text() == first_note  # made in the first session's start-up copy
    assert note.read_text().splitlines()[1] == "used by dbt"


def test_damaged_partial_parse_entry_is_not_trusted(tmp_path: Path) -> None:
    write_partial_parse(tmp_path, "k", "/old/project", b"\x81\xa1a\x01")
    assert read_partial_parse(tmp_path, "k") == ("/old/project", b"\x81\xa1a\x01")
    assert read_partial_parse(tmp_path, "other") is None
    (tmp_path / "k.msgpack").write_bytes(b"\x81\xa1a\x02")  # same size, other content
    assert read_partial_parse(tmp_path, "k") is None
    (tmp_path / "k.msgpack").unlink()
    assert read_partial_parse(tmp_path, "k") is None


def test_unwritable_cache_is_read_or_skipped_never_raised(tmp_path: Path) -> None:
    """A cache folder that cannot be created (here: under a file, as it cannot under a
    read-only mount): the parse result comes back with the reason, and nothing raises."""
    from pytest_dbt_assets.cache import manifest_entry

    project = tmp_path / "project"
    (tmp_path / "target").write_text("not a folder")
    calls = []

    def parse() -> str:
        calls.append(1)
        return json.dumps({"root_path": str(project)})

    text, hit, problem = manifest_entry(tmp_path / "target" / "dbt_assets_cache", "k", project, parse)
    assert not hit and calls == [1]
    assert json.loads(text)["root_path"] == PLACEHOLDER
    assert problem is not None and problem.startswith(f"{tmp_path}/target/dbt_assets_cache cannot be written (")

    # A warm entry in a folder whose lock file cannot be made is still read (without the lock).
    cache = tmp_path / "cache"
    cache.mkdir()
    write_entry(cache / "k.json", "k", json.dumps({"root_path": PLACEHOLDER}))
    (cache / "k.lock").mkdir()  # open() of the lock fails, as it would on a read-only mount
    text, hit, problem = manifest_entry(cache, "k", project, parse)
    assert hit and problem is None and calls == [1]


def test_python_project_inside_the_dbt_project_is_not_fingerprinted(tmp_path: Path) -> None:
    """`dagster-dbt project scaffold` puts the Dagster project inside the dbt project: editing a
    test or an asset there must keep the cached manifest; dbt's own folders still count."""
    from pytest_dbt_assets.manifest import python_projects_inside

    write_files(
        tmp_path,
        {
            "dbt_project.yml": "name: shop\nmodel-paths: [models, lib/models]\n",
            "models/a.sql": "select 1",
            "lib/pyproject.toml": "",  # a Python project dbt reads (named in model-paths): kept
            "shop_dagster/pyproject.toml": "[project]\nname = 'shop_dagster'\n",
            "shop_dagster/tests/test_assets.py": "def test(): pass\n",
            "scripts/run.py": "",
        },
    )
    skip = python_projects_inside(tmp_path)
    assert skip == {"shop_dagster"}
    base = fingerprint(tmp_path, profile="p", target="t", skip=skip)
    (tmp_path / "shop_dagster/tests/test_assets.py").write_text("def test(): assert True\n")
    assert fingerprint(tmp_path, profile="p", target="t", skip=skip) == base
    (tmp_path / "models/a.sql").write_text("select 2")
    assert fingerprint(tmp_path, profile="p", target="t", skip=skip) != base
