"""cache.py: fingerprints, manifest entries and partial-parse entries; stale, damaged or
unwritable entries are never trusted and never raise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_dbt_assets.cache import (
    PLACEHOLDER,
    cached_manifest_text,
    fingerprint,
    newest_partial_parse,
    read_entry,
    read_partial_parse,
    write_entry,
    write_partial_parse,
)
from tests.repos import write_files


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


def test_damaged_partial_parse_entry_is_not_trusted(tmp_path: Path) -> None:
    write_partial_parse(tmp_path, "k", "/old/project", b"\x81\xa1a\x01")
    assert read_partial_parse(tmp_path, "k") == ("/old/project", b"\x81\xa1a\x01")
    assert read_partial_parse(tmp_path, "other") is None
    (tmp_path / "k.msgpack").write_bytes(b"\x81\xa1a\x02")  # same size, other content
    assert read_partial_parse(tmp_path, "k") is None
    (tmp_path / "k.msgpack").unlink()
    assert read_partial_parse(tmp_path, "k") is None


def test_the_newest_trusted_partial_parse_of_the_same_family_is_the_one_to_start_from(tmp_path: Path) -> None:

    assert newest_partial_parse(tmp_path / "missing", "duckdb") is None
    for age, (key, family) in enumerate(
        [("new", "duckdb"), ("snowflake", "snowflake"), ("old", "duckdb"), ("legacy", None)]
    ):
        write_partial_parse(tmp_path, key, f"/{key}", key.encode(), family)
        os.utime(tmp_path / f"{key}.json", (1000 - age, 1000 - age))
    assert newest_partial_parse(tmp_path, "duckdb") == ("/new", b"new")
    assert newest_partial_parse(tmp_path, "snowflake") == ("/snowflake", b"snowflake")
    assert newest_partial_parse(tmp_path, "bigquery") is None
    (tmp_path / "new.msgpack").write_bytes(b"wen")  # damaged: the next one of the family
    assert newest_partial_parse(tmp_path, "duckdb") == ("/old", b"old")
    (tmp_path / "old.json").write_text("{not json")
    assert newest_partial_parse(tmp_path, "duckdb") is None


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
