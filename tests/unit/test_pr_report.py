"""pytest_dbt_assets.diff.markdown: the pull-request report, from plain data.

Data diffs are small stand-in dataclasses with the duck-typed surface the report reads
(``.tables`` of objects with ``.describe()`` and ``.breaking``, and ``.describe()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_dbt_assets.diff.impact import Impact, compare_graphs
from pytest_dbt_assets.diff.markdown import FOLD_NODES, FOLD_ROWS, code, render_report


@dataclass(frozen=True)
class Table:
    text: str
    breaking: bool = False

    def describe(self) -> str:
        return self.text

    def unchanged(self) -> bool:
        return self.text.startswith("unchanged")


@dataclass(frozen=True)
class Diff:
    tables: dict[str, Table] = field(default_factory=dict)

    def describe(self) -> str:
        return "\n".join(f"{key}: {table.text}" for key, table in sorted(self.tables.items())) or "no tables"


def _asset(deps: list[str], sql: str = "s1", columns: dict[str, str | None] | None = None) -> dict[str, Any]:
    return {
        "kind": "dbt_model",
        "group": None,
        "deps": deps,
        "checks": [],
        "facets": {"sql": sql},
        "columns": columns or {},
    }


def _export(assets: dict[str, dict[str, Any]], jobs: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"format": 1, "assets": assets, "jobs": jobs or {}, "schedules": {}}


BASE = _export(
    {
        "stg_a": _asset([], columns={"id": "integer", "status": "varchar"}),
        "stg_b": _asset([]),
        "mart_c": _asset(["stg_a"]),
        "mart_d": _asset(["mart_c", "stg_b"]),
        "mart_e": _asset(["mart_d"]),
    },
    jobs={"daily": ["mart_c"]},
)


def _impact(**assets: dict[str, Any]) -> Impact:
    current = _export({**BASE["assets"], **assets}, jobs=BASE["jobs"])
    return compare_graphs(BASE, current, base_label="origin/main (1a2b3c4)")


BREAKING = _impact(stg_a=_asset([], sql="s2", columns={"id": "integer"}), stg_b=_asset([], sql="s2"))


def _lines(text: str) -> list[str]:
    return text.split("\n")


def test_headline_counts_the_impact_snapshots_and_data() -> None:
    text = render_report(
        impact=BREAKING,
        data_diffs=[("t.py::test_d", Diff({"mart_c": Table("1 row changed", breaking=True), "mart_d": Table("same")}))],
        failed_snapshots=[("t.py::test_g", "What changed:\n- mart_c")],
    )
    headline = "**2 assets modified, 3 downstream, 1 breaking; 1 snapshot failed; data: 2 assets changed (1 breaking)**"
    assert _lines(text)[:3] == ["## pytest-dbt-assets report", "", headline + " (against `origin/main (1a2b3c4)`)"]


def test_headline_with_an_unchanged_graph_and_plural_snapshots() -> None:
    unchanged = compare_graphs(BASE, BASE, base_label="main")
    text = render_report(
        impact=unchanged, data_diffs=[], failed_snapshots=[("a::t1", "x"), ("a::t2", "y")], title="Report"
    )
    assert _lines(text)[:3] == ["## Report", "", "**no asset changed; 2 snapshots failed** (against `main`)"]
    assert "### Impact" not in text


def test_nothing_changed_is_one_sentence() -> None:
    unchanged = compare_graphs(BASE, BASE, base_label="origin/main (1a2b3c4)")
    assert render_report(impact=unchanged, data_diffs=[], failed_snapshots=[]) == (
        "## pytest-dbt-assets report\n\n"
        "Nothing changed against `origin/main (1a2b3c4)`: no asset, check, job or schedule differs.\n"
    )
    assert render_report(impact=None, data_diffs=[], failed_snapshots=[]) == (
        "## pytest-dbt-assets report\n\nNothing to report: no snapshot failed and no data was compared.\n"
    )


def test_the_impact_table_lists_changes_with_reasons_and_breaking() -> None:
    text = render_report(impact=BREAKING, data_diffs=[], failed_snapshots=[])
    assert "| `stg_a` | modified, **breaking** | SQL, columns; breaking: column status removed |" in _lines(text)
    assert "| `mart_d` | downstream | via `stg_a`, `stg_b` |" in _lines(text)
    rows = [line for line in _lines(text) if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["stg_a", "stg_b", "mart_c", "mart_d", "mart_e"]


def test_removed_assets_and_job_changes() -> None:
    assets = {key: value for key, value in BASE["assets"].items() if key != "stg_b"}
    assets["mart_d"] = _asset(["mart_c"])
    impact = compare_graphs(BASE, _export(assets, jobs={"daily": ["mart_d"]}), base_label="main")
    lines = _lines(render_report(impact=impact, data_diffs=[], failed_snapshots=[]))
    assert "| `stg_b` | removed, **breaking** |  |" in lines
    assert "- job `daily`: +`mart_d`, -`mart_c`" in lines


def test_the_mermaid_picture_is_in_a_mermaid_block() -> None:
    text = render_report(impact=BREAKING, data_diffs=[], failed_snapshots=[])
    assert "```mermaid\n" + BREAKING.mermaid() + "```\n" in text
    assert "<details><summary>Impacted subgraph" not in text


def test_a_failed_snapshot_is_folded_with_its_nodeid_escaped() -> None:
    text = render_report(
        impact=None, data_diffs=[], failed_snapshots=[("t.py::test_x[a<b]", "What changed:\n```sql\nselect 1\n```")]
    )
    assert (
        "<details><summary>t.py::test_x[a&lt;b]</summary>\n\n"
        "````text\nWhat changed:\n```sql\nselect 1\n```\n````\n\n</details>\n"
    ) in text


def test_many_assets_fold_the_table_and_the_picture() -> None:
    count = max(FOLD_ROWS, FOLD_NODES) + 1
    base = _export({"root": _asset([]), **{f"m{index:02}": _asset(["root"]) for index in range(count)}})
    current = _export({**base["assets"], "root": _asset([], sql="s2")})
    impact = compare_graphs(base, current, base_label="main")
    text = render_report(impact=impact, data_diffs=[], failed_snapshots=[])
    assert f"<details><summary>{count + 1} assets touched</summary>\n\n| Asset | Change | Details |" in text
    assert f"<details><summary>Impacted subgraph ({count + 1} assets)</summary>" in text


def test_data_diffs_one_line_per_asset_long_parts_folded() -> None:
    diff = Diff(
        {
            "mart_d": Table("3 rows changed (lifetime_value)\ncolumn first_order: date -> timestamp", breaking=True),
            "mart_c": Table("no change"),
        }
    )
    lines = _lines(render_report(impact=None, data_diffs=[("t.py::test_d", diff)], failed_snapshots=[]))
    start = lines.index("**`t.py::test_d`**")
    assert lines[start + 2 : start + 4] == [
        "- `mart_c`: no change",
        "- `mart_d` **breaking**: 3 rows changed (lifetime\\_value)",
    ]
    assert lines[start + 5 : start + 12] == [
        "<details><summary>Full data diff of t.py::test_d</summary>",
        "",
        "```text",
        "mart_d:",
        "  3 rows changed (lifetime_value)",
        "  column first_order: date -> timestamp",
        "```",
    ]


def test_a_data_diff_without_tables_says_what_it_says() -> None:
    text = render_report(impact=None, data_diffs=[("t.py::test_e", Diff())], failed_snapshots=[])
    assert "**`t.py::test_e`**\n\n- no tables\n" in text
    assert text.split("\n")[2] == "**data: 0 assets changed**"


def test_pipes_and_backticks_are_escaped() -> None:
    base = _export({"a|b": _asset([]), "c`d": _asset(["a|b"])})
    current = _export({"a|b": _asset([], sql="s2"), "c`d": _asset(["a|b"])})
    lines = _lines(
        render_report(impact=compare_graphs(base, current, base_label="m"), data_diffs=[], failed_snapshots=[])
    )
    assert "| `a\\|b` | modified | SQL |" in lines
    assert "| ``c`d`` | downstream | via `a\\|b` |" in lines
    assert code("`x`") == "`` `x` ``"


def test_output_does_not_depend_on_the_order_results_arrive_in() -> None:
    snapshots = [("b.py::t", "x"), ("a.py::t", "y")]
    diffs = [("b.py::t", Diff({"m": Table("1 row added")})), ("a.py::t", Diff({"n": Table("same")}))]
    one = render_report(impact=BREAKING, data_diffs=diffs, failed_snapshots=snapshots)
    other = render_report(impact=BREAKING, data_diffs=diffs[::-1], failed_snapshots=snapshots[::-1])
    assert one == other
    assert one.index("a.py::t</summary>") < one.index("b.py::t</summary>")


def test_long_texts_are_shortened_to_max_lines() -> None:
    snapshots = [(f"t.py::test_{index}", "\n".join(f"line {n}" for n in range(100))) for index in range(3)]
    text = render_report(impact=None, data_diffs=[], failed_snapshots=snapshots, max_lines=150)
    assert len(_lines(text.rstrip("\n"))) <= 150
    assert text.count("more lines left out") == 3
    assert text.count("</details>") == 3


def test_sections_past_max_lines_are_left_out_with_a_note() -> None:
    snapshots = [(f"t.py::test_{index:02}", "\n".join(f"line {n}" for n in range(20))) for index in range(30)]
    text = render_report(impact=None, data_diffs=[], failed_snapshots=snapshots, max_lines=100)
    lines = _lines(text.rstrip("\n"))
    assert len(lines) <= 100
    assert text.count("<details>") == text.count("</details>")
    assert lines[-1].startswith("_") and "more sections left out to keep the report under 100 lines" in lines[-1]
    assert "test_00" in text and "test_29" not in text
