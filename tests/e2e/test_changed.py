"""``--dbt-assets-changed-since``: a first run records what each test reaches; after a commit of
each kind of change (a model's SQL, its YAML, a seed, a macro, a Python asset's code, the
translator's output) a run since that commit's parent runs exactly the tests that reach it,
every test with no record, every test without the plugin's fixtures, and leaves the checkout
as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.repos import SHOP_DBT_FILES, SHOP_INI, checkout_state, commit_new_repo, edit, git, write_files

pytestmark = pytest.mark.e2e

RAW_CUSTOMERS = "acme/raw/raw_customers"
RAW_ORDERS = "acme/raw/raw_orders"
STG_CUSTOMERS = "acme/staging/stg_customers"
STG_ORDERS = "acme/staging/stg_orders"
ORDERS = "acme/marts/orders"

# The shop of tests/repos.py with a macro (orders only calls it), a Python asset downstream of
# customers, and a translator that tags one model.
FILES = {
    **SHOP_DBT_FILES,
    "shop/macros/money.sql": """
        {% macro money(column) %}cast({{ column }} as decimal(10, 2)){% endmacro %}
    """,
    "shop/models/marts/orders.sql": "select order_id, customer_id, {{ money('amount') }} as amount "
    "from {{ ref('stg_orders') }}",
    "shop_dagster/__init__.py": "",
    "shop_dagster/definitions.py": """
        from pathlib import Path

        import dagster as dg
        from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets, get_asset_key_for_model

        project = DbtProject(project_dir=Path(__file__).parent.parent / "shop")


        class AcmeTranslator(DagsterDbtTranslator):
            def get_asset_key(self, props):
                folder = props["fqn"][1] if props["resource_type"] == "model" else "raw"
                return dg.AssetKey(["acme", folder, props["name"]])

            def get_tags(self, props):
                return {"tier": "gold"} if props["name"] in ("customers",) else {}


        @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=AcmeTranslator())
        def shop_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
            yield from dbt.cli(["build"], context=context).stream()


        @dg.asset(key=["acme", "ml", "customer_scores"], deps=[get_asset_key_for_model([shop_dbt_assets], "customers")])
        def customer_scores():
            return dg.MaterializeResult(metadata={"dagster/row_count": 3})


        defs = dg.Definitions(
            assets=[shop_dbt_assets, customer_scores], resources={"dbt": DbtCliResource(project_dir=project)}
        )
    """,
    "pyproject.toml": SHOP_INI,
    ".gitignore": "target/\nlogs/\n.pytest_cache/\n__pycache__/\n*.duckdb\n",
    "tests/test_shop.py": """
        import dagster as dg


        def test_stg_customers(dbt_assets_materialize):
            assert dbt_assets_materialize(dbt_select="+stg_customers").success


        def test_orders(dbt_assets_materialize):
            assert dbt_assets_materialize(dbt_select="+orders").row_counts["acme/marts/orders"] == 4


        def test_customers(dbt_assets_materialize):
            assert dbt_assets_materialize(dbt_select="+customers").success


        def test_scores(dbt_assets_materialize):
            selection = dg.AssetSelection.assets(dg.AssetKey(["acme", "ml", "customer_scores"])).upstream()
            assert "acme/ml/customer_scores" in dbt_assets_materialize(selection).materialized


        def test_graph(dbt_asset_graph):
            assert "acme/marts/orders" in dbt_asset_graph.keys


        def test_plain():
            assert True
    """,
    # Left out of the first run: it has no record.
    "tests/test_late.py": """
        def test_late(dbt_assets_materialize):
            assert dbt_assets_materialize(dbt_select="+stg_customers").success
    """,
}

TESTS = ("test_stg_customers", "test_orders", "test_customers", "test_scores")

# kind -> (file, old text, new text), the materializing tests it reaches.
CHANGES = {
    "sql": (
        "shop/models/staging/stg_orders.sql",
        "amount from",
        "amount * 1 as amount from",
        {"test_orders", "test_customers", "test_scores"},
    ),
    "yaml": (
        "shop/models/marts/schema.yml",
        "- name: orders\n",
        "- name: orders\n    description: One row per order.\n",
        {"test_orders"},
    ),
    "seed": ("shop/seeds/raw_customers.csv", "3,Cy", "3,Cyd", {"test_stg_customers", "test_customers", "test_scores"}),
    "macro": ("shop/macros/money.sql", "decimal(10, 2)", "decimal(12, 2)", {"test_orders"}),
    "python": ("shop_dagster/definitions.py", '"dagster/row_count": 3', '"dagster/row_count": 3 + 0', {"test_scores"}),
    "translator": ("shop_dagster/definitions.py", '("customers",)', '("customers", "orders")', {"test_orders"}),
}


def shop_repo(pytester: pytest.Pytester) -> Path:
    repo = pytester.path
    write_files(repo, FILES)
    commit_new_repo(repo, "shop")
    return repo


# The recorded first run is the same for every kind of change: made once in each test process,
# then the repository (its git history, pytest's cache holding the records, target/) is copied.
_RECORDED: dict[str, Path] = {}


def recorded_shop_repo(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop, committed, after a first run that recorded what each test reaches (the late
    test deselected: it has no record)."""
    repo = pytester.path
    if "shop" in _RECORDED:
        shutil.copytree(_RECORDED["shop"], repo, dirs_exist_ok=True, symlinks=True)
        return repo
    shop_repo(pytester)
    first = pytester.runpytest("-p", "no:randomly", "--deselect=tests/test_late.py::test_late")
    first.assert_outcomes(passed=6, deselected=1)
    template = tmp_path_factory.mktemp("recorded-shop")
    shutil.copytree(repo, template, dirs_exist_ok=True, symlinks=True)
    _RECORDED["shop"] = template
    return repo


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_run_since_a_change_runs_exactly_the_tests_that_reach_it(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    repo = recorded_shop_repo(pytester, tmp_path_factory)

    name, old, new, reaching = CHANGES[kind]
    edit(repo, name, old, new)
    git(repo, "commit", "--quiet", "--all", f"--message=change the {kind}")
    before = checkout_state(repo)
    since = pytester.runpytest("-p", "no:randomly", "-v", "--dbt-assets-changed-since=HEAD~1")

    deselected = sorted(set(TESTS) - reaching)
    # Every test that reaches the change runs, and the graph test, the plain one and the late one.
    since.assert_outcomes(passed=len(reaching) + 3, deselected=len(deselected))
    ran = [f"*tests/test_shop.py::{test} PASSED*" for test in sorted(reaching)]
    since.stdout.fnmatch_lines_random(
        [
            *ran,
            "*tests/test_shop.py::test_graph PASSED*",
            "*test_plain PASSED*",
            "*tests/test_late.py::test_late PASSED*",
        ]
    )
    told = [f"dbt-assets: deselected tests/test_shop.py::{test}: reaches *; nothing it reaches changed since HEAD~1"
            for test in deselected]  # fmt: skip
    headline = f"dbt-assets: changed since HEAD~1 (*): * asset* touched, * file* changed; {len(deselected)} of 7 tests*"
    since.stdout.fnmatch_lines_random([*told, headline])
    assert checkout_state(repo) == before


def test_under_xdist_the_controller_records_and_tells_what_the_workers_deselected(pytester: pytest.Pytester) -> None:
    repo = shop_repo(pytester)
    pytester.runpytest("-n", "2", "tests/test_shop.py").assert_outcomes(passed=6)
    name, old, new, _ = CHANGES["python"]
    edit(repo, name, old, new)
    git(repo, "commit", "--quiet", "--all", "--message=change the scores")
    since = pytester.runpytest("-n", "2", "-v", "tests/test_shop.py", "--dbt-assets-changed-since=HEAD~1")
    since.assert_outcomes(passed=3)  # test_scores, test_graph, test_plain
    since.stdout.fnmatch_lines_random(
        [
            "*PASSED*tests/test_shop.py::test_scores*",
            "dbt-assets: deselected tests/test_shop.py::test_orders: reaches *; nothing it reaches changed since HEAD~1",
            "dbt-assets: changed since HEAD~1 (*): 1 asset touched, 1 file changed; 3 of 6 tests deselected",
        ]
    )


def test_an_unknown_revision_warns_once_and_runs_every_test(pytester: pytest.Pytester) -> None:
    shop_repo(pytester)
    result = pytester.runpytest("-p", "no:randomly", "tests/test_late.py", "--dbt-assets-changed-since=origin/nope")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*dbt-assets: --dbt-assets-changed-since=origin/nope: cannot tell which tests the change touches, "
                "so every test runs. git does not know the base revision 'origin/nope'*"
            ),
            "dbt-assets: cannot tell what changed since origin/nope: every test ran",
        ]
    )
