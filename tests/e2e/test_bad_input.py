"""Broken user repos: each run fails with ONE clear message (what, where, how to fix), not
a wall of dagster or dbt traceback; and the settings that look broken but are fine pass."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.repos import SHOP_DAGSTER_FILES, SHOP_INI, SOCKET_GUARD, write_files

pytestmark = pytest.mark.e2e

# Added to test_isolation's socket guard: a name lookup is the first step of any download.
NAME_LOOKUP_GUARD = """

    _getaddrinfo = socket.getaddrinfo

    def _guarded_lookup(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            with open(os.environ["SOCKET_GUARD_LOG"], "a") as log:
                log.write(f"{os.getpid()} lookup {host!r}\\n")
            raise socket.gaierror(f"socket guard: no network in tests ({host!r})")
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = _guarded_lookup
"""

GRAPH_TEST = {
    "tests/test_graph.py": """
        def test_graph(dbt_asset_graph):
            assert dbt_asset_graph.keys
    """
}

RUN_TEST = {
    "tests/test_run.py": """
        def test_run(dbt_assets_materialize):
            result = dbt_assets_materialize(dbt_select="+customers +orders")
            assert result.row_counts["acme/marts/customers"] == 3
    """
}

SHOP_DEFINITIONS = SHOP_DAGSTER_FILES["shop_dagster/definitions.py"]

# pytest's own section headers ("==== ERRORS ====", "---- Captured stdout ----").
_HEADER = re.compile(r"^(=+|_+|-+) .* (=+|_+|-+)$")


def failure_report(result: pytest.RunResult) -> str:
    """The inner run's error/failure reports, without pytest's headers and without the
    captured output (dbt's and dagster's own logs are not the plugin's message)."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.match(r"^=+ (ERRORS|FAILURES) =+$", line))
    report: list[str] = []
    captured = False
    for line in lines[start + 1 :]:
        if re.match(r"^=+ .* =+$", line):
            break
        if _HEADER.match(line):
            captured = " Captured " in line
        elif not captured:
            report.append(line)
    return "\n".join(report)


def assert_one_clear_failure(result: pytest.RunResult, *fragments: str, max_lines: int = 20) -> str:
    """One failing test whose report holds every fragment once, in a few plain lines."""
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == 1, result.stdout.str()
    report = failure_report(result)
    for fragment in fragments:
        assert fragment in report, f"{fragment!r} not in:\n{report}"
    # The message is said once (no "During handling of the above exception" echo).
    assert report.count(fragments[0]) == 1, report
    assert "During handling" not in report, report
    assert "Traceback" not in report, report
    assert "site-packages" not in report, report
    assert len(report.strip().splitlines()) <= max_lines, report
    return report


# 1. No dbt project -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "files", "hint"),
    [
        ("dbt", {"dbt/README.md": "the dbt project moved"}, ""),
        ("missing", {}, " (the folder does not exist)"),
        (".", {"shop/dbt_project.yml": "name: shop"}, ""),
    ],
    ids=["empty-folder", "missing-folder", "project-one-level-down"],
)
def test_project_dir_without_dbt_project_yml(
    pytester: pytest.Pytester, setting: str, files: dict[str, str], hint: str
) -> None:
    write_files(
        pytester.path,
        {
            **GRAPH_TEST,
            **files,
            "pyproject.toml": f"""
                [tool.pytest.ini_options]
                dbt_assets_project_dir = "{setting}"
            """,
        },
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    report = assert_one_clear_failure(
        result,
        f"No dbt_project.yml found in {(pytester.path / setting).resolve()}{hint}.",
        "Set `dbt_assets_project_dir` in [tool.pytest.ini_options]",
        "--dbt-assets-project-dir",
    )
    assert ("dbt projects under it: shop." in report) == (setting == ".")


def test_no_configuration_and_no_dbt_project_in_rootdir(pytester: pytest.Pytester) -> None:
    write_files(pytester.path, {**GRAPH_TEST, "pyproject.toml": "[tool.pytest.ini_options]\n"})
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        f"the rootdir {pytester.path} holds no dbt_project.yml",
        "Set `dbt_assets_project_dir` in [tool.pytest.ini_options]",
    )


# 2-4. dbt cannot parse the project -------------------------------------------------------


def test_yaml_syntax_error_names_the_file(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **GRAPH_TEST,
            "shop/models/marts/schema.yml": """
                version: 2
                models:
                  - name: customers
                    columns: [
            """,
        },
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(result, "DbtParseError", "marts/schema.yml", "Syntax error near line 5")


def test_unknown_ref_names_model_and_ref(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path, {**GRAPH_TEST, "shop/models/marts/orders.sql": "select * from {{ ref('stg_payments') }}"}
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result, "DbtParseError", "Model 'model.shop.orders' (models/marts/orders.sql)", "'stg_payments'"
    )


def test_ref_cycle_names_both_models(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {**GRAPH_TEST, "shop/models/staging/stg_orders.sql": "select * from {{ ref('orders') }}"},
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    report = assert_one_clear_failure(
        result, "ref cycle", "models/marts/orders.sql", "models/staging/stg_orders.sql", "Remove one of these refs"
    )
    assert "model.shop.orders" in report
    assert "model.shop.stg_orders" in report


# 5-7. The Dagster definitions cannot be loaded ------------------------------------------


def test_definitions_module_not_found(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {**GRAPH_TEST, "pyproject.toml": SHOP_INI.replace("shop_dagster.definitions:defs", "shop_dagster.defs:defs")},
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    report = assert_one_clear_failure(
        result,
        "Could not import 'shop_dagster.defs'",
        "no module named 'shop_dagster.defs'",
        "pythonpath",
    )
    assert "pytest_dbt_assets/" not in report  # not the plugin's own file as "where"


def test_definitions_module_raising_at_import_shows_user_error(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **GRAPH_TEST,
            "shop_dagster/definitions.py": """
                import os

                WAREHOUSE = os.environ.get("SNOWFLAKE_ACCOUNT")
                if WAREHOUSE is None:
                    raise RuntimeError("SNOWFLAKE_ACCOUNT is not set")
            """,
        },
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        "Importing 'shop_dagster.definitions'",
        "shop_dagster/definitions.py:5",
        'raise RuntimeError("SNOWFLAKE_ACCOUNT is not set")',
        "RuntimeError: SNOWFLAKE_ACCOUNT is not set",
    )


def test_definitions_module_with_syntax_error_shows_file_and_line(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path, {**GRAPH_TEST, "shop_dagster/definitions.py": "import dagster\n\ndefs = dagster.Definitions(\n"}
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result, "Importing 'shop_dagster.definitions'", "shop_dagster/definitions.py:3", "SyntaxError"
    )


def test_definitions_attribute_missing_suggests_existing(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {**GRAPH_TEST, "pyproject.toml": SHOP_INI.replace("definitions:defs", "definitions:definitions")},
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        "'shop_dagster.definitions' (shop_dagster/definitions.py) has no attribute 'definitions'",
        "It defines 'shop_dagster.definitions:defs'",
    )


@pytest.mark.parametrize(("value", "type_name"), [("3", "builtins.int"), ("'shop'", "builtins.str")])
def test_definitions_attribute_of_wrong_type(shop_repo: pytest.Pytester, value: str, type_name: str) -> None:
    write_files(shop_repo.path, {**GRAPH_TEST, "shop_dagster/definitions.py": f"defs = {value}\n"})
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        f"dbt_assets_definitions = 'shop_dagster.definitions:defs' is a {type_name}, not a dagster.Definitions",
        "Point it at your Definitions object",
    )


def test_definitions_setting_without_colon(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {**GRAPH_TEST, "pyproject.toml": SHOP_INI.replace("definitions:defs", "definitions.defs")},
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        "dbt_assets_definitions = 'shop_dagster.definitions.defs' is not of the form 'package.module:attribute'",
        "Did you mean 'shop_dagster.definitions:defs'?",
    )


# 8. Packages not installed ----------------------------------------------------------------


def test_project_needing_dbt_deps_fails_without_network_access(
    shop_repo: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(
        shop_repo.path,
        {
            **GRAPH_TEST,
            "shop/packages.yml": """
                packages:
                  - package: dbt-labs/dbt_utils
                    version: 1.3.0
            """,
            "shop/models/marts/orders.sql": (
                "select {{ dbt_utils.generate_surrogate_key(['order_id']) }} as order_key, * "
                "from {{ ref('stg_orders') }}"
            ),
        },
    )
    # Every Python process of the run records and refuses name lookups and connections.
    write_files(tmp_path / "guard", {"sitecustomize.py": SOCKET_GUARD + NAME_LOOKUP_GUARD})
    log = tmp_path / "network.log"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "guard"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SOCKET_GUARD_LOG", str(log))
    result = shop_repo.runpytest_subprocess(timeout=600)  # a hang guard, not a measure
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result, "The plugin never runs `dbt deps` (no network during tests)", 'Run "dbt deps"', "dbt_packages/"
    )
    assert not log.exists() or log.read_text() == "", log.read_text()


# 9-10. What looks wrong but must work ------------------------------------------------------


def test_profile_name_missing_from_users_profiles_yml_still_works(shop_repo: pytest.Pytester) -> None:
    # dbt_project.yml says `profile: shop_prod`; the user's profiles.yml knows only `warehouse`.
    write_files(
        shop_repo.path,
        {
            **RUN_TEST,
            "shop/profiles.yml": """
                warehouse:
                  target: prod
                  outputs:
                    prod:
                      type: duckdb
                      path: prod.duckdb
            """,
        },
    )
    shop_repo.runpytest().assert_outcomes(passed=1)
    assert not list(shop_repo.path.rglob("prod.duckdb"))


def test_dbt_env_vars_of_the_users_shell_are_ignored_and_kept(
    shop_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = {
        "DBT_PROFILES_DIR": str(shop_repo.path / "shop"),  # the user's real profiles.yml
        "DBT_PROFILE": "shop_prod",
        "DBT_TARGET": "prod",
        "DBT_TARGET_PATH": str(shop_repo.path / "elsewhere"),
        "DBT_PROJECT_DIR": str(shop_repo.path / "no_such_project"),
    }
    for name, value in users.items():
        monkeypatch.setenv(name, value)
    write_files(
        shop_repo.path,
        {
            "tests/test_run.py": f"""
                import os


                def test_run(dbt_assets_materialize, dbt_assets_project):
                    result = dbt_assets_materialize(dbt_select="+customers +orders")
                    assert result.row_counts["acme/marts/customers"] == 3
                    assert dbt_assets_project.query("select count(*) from customers") == [(3,)]
                    # The test itself still sees the user's environment.
                    assert {{k: os.environ.get(k) for k in {sorted(users)!r}}} == {users!r}
            """
        },
    )
    shop_repo.runpytest().assert_outcomes(passed=1)
    assert not list(shop_repo.path.rglob("prod.duckdb"))
    assert not (shop_repo.path / "elsewhere").exists()
    assert {name: os.environ.get(name) for name in users} == users


# 11-12. Failures while building ------------------------------------------------------------


def test_missing_required_var_names_the_var(shop_repo: pytest.Pytester) -> None:
    write_files(
        shop_repo.path,
        {
            **RUN_TEST,
            "shop/models/marts/orders.sql": "select *, {{ var('needed') }} as flag from {{ ref('stg_orders') }}",
        },
    )
    result = shop_repo.runpytest()
    result.assert_outcomes(failed=1)
    report = assert_one_clear_failure(
        result, "Required var 'needed' not found", "MaterializationError", "dbt model orders (models/marts/orders.sql)"
    )
    assert sum(line.startswith("E ") for line in report.splitlines()) <= 8, report


def test_translator_mapping_two_models_to_one_key(shop_repo: pytest.Pytester) -> None:
    definitions = SHOP_DEFINITIONS.replace(
        'return dg.AssetKey(["acme", folder, props["name"]])',
        'return dg.AssetKey(["acme", props["name"].removeprefix("stg_")])',
    )
    assert definitions != SHOP_DEFINITIONS
    write_files(shop_repo.path, {**GRAPH_TEST, "shop_dagster/definitions.py": definitions})
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        "identical Dagster asset keys",
        "shop_dagster/definitions.py:",
        "`model.shop.stg_customers`",
        "`model.shop.customers`",
        "['acme', 'customers']",
        max_lines=25,
    )


def test_python_asset_reusing_a_dbt_key(shop_repo: pytest.Pytester) -> None:
    definitions = SHOP_DEFINITIONS.replace(
        "        defs = dg.Definitions(",
        "        @dg.asset(key=['acme', 'marts', 'orders'])\n"
        "        def orders_export():\n"
        "            pass\n\n\n"
        "        defs = dg.Definitions(",
    ).replace("assets=[shop_dbt_assets, ", "assets=[shop_dbt_assets, orders_export, ")
    assert "orders_export, " in definitions
    write_files(shop_repo.path, {**GRAPH_TEST, "shop_dagster/definitions.py": definitions})
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result,
        "acme/marts/orders: produced by",
        "dbt model orders in @dbt_assets 'shop_dbt_assets'",
        "asset 'orders_export' (",
        "shop_dagster/definitions.py:",
        "Give each asset a unique key",
    )


def test_missing_seed_file_names_the_seed_and_the_model(shop_repo: pytest.Pytester) -> None:
    (shop_repo.path / "shop/seeds/raw_orders.csv").unlink()
    write_files(shop_repo.path, GRAPH_TEST)
    result = shop_repo.runpytest()
    result.assert_outcomes(errors=1)
    assert_one_clear_failure(
        result, "DbtParseError", "Model 'model.shop.stg_orders' (models/staging/stg_orders.sql)", "'raw_orders'"
    )


def test_a_misspelt_marker_keyword_errors_the_test(shop_repo: pytest.Pytester) -> None:
    """`selct=` was silently ignored: the test ran on the whole project. It now errors at set-up,
    with or without the plugin's fixtures."""
    shop_repo.makepyfile(
        test_marker="""
            import pytest

            @pytest.mark.dbt_assets(selct="+customers")
            def test_typo(dbt_assets_materialize):
                raise AssertionError("never runs")

            @pytest.mark.dbt_assets(dbt_select="+customers")
            def test_fine():
                pass
        """
    )
    result = shop_repo.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*MarkerError: @pytest.mark.dbt_assets(selct=...) is not an argument*select=?*"])
