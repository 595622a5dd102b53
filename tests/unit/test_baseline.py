"""The session baseline's template files: kept sparse, copied with only their data, and
always read back as the exact bytes (and the same DuckDB database) that were built."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pytest_dbt_assets.sparse import PAGE_BYTES, copy_data_extents, write_sparse_copy

# Zero pages before, between and after data, a page that is zero but for its last byte, and
# a size that is no multiple of a page.
LAYOUTS = {
    "leading hole": [b"\0" * PAGE_BYTES * 40, b"data" * 100],
    "holes between": [b"x" * PAGE_BYTES, b"\0" * PAGE_BYTES * 33, b"y" * 10, b"\0" * PAGE_BYTES * 3, b"z"],
    "trailing hole": [b"head", b"\0" * PAGE_BYTES * 20],
    "last byte of a page": [b"\0" * (PAGE_BYTES - 1), b"\1", b"\0" * (PAGE_BYTES * 17 + 5)],
    "all zeros": [b"\0" * (PAGE_BYTES * 50 + 123)],
    "empty": [],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_template_and_its_copies_read_back_as_the_bytes_built(tmp_path: Path, layout: str) -> None:
    built = tmp_path / "built.db"
    built.write_bytes(b"".join(LAYOUTS[layout]))
    template, copy = tmp_path / "template.db", tmp_path / "copy.db"

    write_sparse_copy(built, template)
    copy.write_bytes(b"a longer file that was there before the copy" * PAGE_BYTES)
    copy_data_extents(template, copy)

    assert template.read_bytes() == built.read_bytes()
    assert copy.read_bytes() == built.read_bytes()


def test_a_copy_of_a_duckdb_template_is_the_same_database(tmp_path: Path) -> None:
    built = tmp_path / "built.duckdb"
    with duckdb.connect(str(built)) as con:
        for index in range(30):  # each table takes a block of its own, mostly zeros
            con.execute(f"create table t{index} as select range as id, 'row ' || range as label from range({index})")
        con.execute("create view v as select sum(id) as total from t29")
    template, copy = tmp_path / "template" / "built.duckdb", tmp_path / "test" / "built.duckdb"
    template.parent.mkdir()
    copy.parent.mkdir()
    write_sparse_copy(built, template)
    copy_data_extents(template, copy)

    with duckdb.connect(str(copy)) as con:
        assert con.execute("select count(*) from information_schema.tables").fetchone() == (31,)
        assert con.execute("select total from v").fetchone() == (sum(range(29)),)
        assert con.execute("select label from t7 order by id desc limit 1").fetchone() == ("row 6",)
        con.execute("insert into t3 values (100, 'written into the copy')")
    assert copy.read_bytes() != built.read_bytes()
    with duckdb.connect(str(built), read_only=True) as con:  # the template's source is untouched
        assert con.execute("select count(*) from t3").fetchone() == (3,)
    with duckdb.connect(str(template), read_only=True) as con:
        assert con.execute("select count(*) from t3").fetchone() == (3,)


def test_without_range_copies_a_copy_is_a_plain_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    source.write_bytes(b"\0" * PAGE_BYTES * 3 + b"data")
    monkeypatch.delattr("os.copy_file_range", raising=False)
    copy_data_extents(source, target)
    assert target.read_bytes() == source.read_bytes()
