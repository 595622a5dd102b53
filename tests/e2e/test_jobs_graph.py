"""Jobs and schedules in the asset graph: what each selects, as Dagster resolves it, in the
snapshot, and told in words when a change (a translator's, say) moves or empties a selection."""

from __future__ import annotations

import textwrap

import pytest

from tests.repos import GRAPH_SNAPSHOT_TEST, SHOP_DAGSTER_FILES, write_files

pytestmark = pytest.mark.e2e

_SHOP_DEFINITIONS = SHOP_DAGSTER_FILES["shop_dagster/definitions.py"]
_DEFS_BLOCK = _SHOP_DEFINITIONS[_SHOP_DEFINITIONS.index("        defs = dg.Definitions(") :]

# The shop's code location with the jobs and schedules a team writes: a job over a group, a job
# over a dbt selection, a dagster-dbt schedule from a dbt selection, a schedule of a job by key
# prefix, and a schedule given assets as its target (Dagster makes an anonymous job for it).
SCHEDULED_DEFINITIONS = _SHOP_DEFINITIONS.replace(
    _DEFS_BLOCK,
    """
        from dagster_dbt import build_dbt_asset_selection, build_schedule_from_dbt_selection

        marts_job = dg.define_asset_job("marts_job", selection=dg.AssetSelection.groups("acme_marts"))
        staging_job = dg.define_asset_job(
            "staging_job", selection=build_dbt_asset_selection([shop_dbt_assets], dbt_select="staging")
        )
        nightly_marts = build_schedule_from_dbt_selection(
            [shop_dbt_assets], job_name="nightly_marts", cron_schedule="0 2 * * *", dbt_select="marts"
        )
        hourly_acme = dg.ScheduleDefinition(
            name="hourly_acme",
            cron_schedule="0 * * * *",
            job=dg.define_asset_job("acme_marts_job", selection=dg.AssetSelection.key_prefixes(["acme", "marts"])),
        )
        scores_daily = dg.ScheduleDefinition(name="scores_daily", cron_schedule="0 5 * * *", target=[customer_scores])

        defs = dg.Definitions(
            assets=[shop_dbt_assets, customer_scores],
            jobs=[marts_job, staging_job],
            schedules=[nightly_marts, hourly_acme, scores_daily],
            resources={"dbt": DbtCliResource(project_dir=project)},
        )
    """,
)

MARTS = ["acme/marts/customers", "acme/marts/orders"]
STAGING = ["acme/staging/stg_customers", "acme/staging/stg_orders"]

# What Dagster resolves, spelled out by hand, and cross-checked in the inner test against
# Dagster's own resolution of each job's selection over the code location's asset graph.
JOBS_TEST = f"""
    import dagster as dg

    def test_jobs(dbt_asset_graph, dbt_assets_defs):
        assert dbt_asset_graph.jobs == {{
            "acme_marts_job": {MARTS!r},
            "marts_job": {MARTS!r},
            "nightly_marts": {MARTS!r},
            "staging_job": {STAGING!r},
        }}
        assert dbt_asset_graph.schedules == {{
            "hourly_acme": {{"cron": "0 * * * *", "job": "acme_marts_job", "assets": {MARTS!r}}},
            "nightly_marts_schedule": {{"cron": "0 2 * * *", "job": "nightly_marts", "assets": {MARTS!r}}},
            "scores_daily": {{"cron": "0 5 * * *", "assets": ["customer_scores"]}},
        }}

        asset_graph = dbt_assets_defs.resolve_asset_graph()
        unresolved = {{job.name: job for job in dbt_assets_defs.jobs}}
        unresolved.update({{s.job.name: s.job for s in dbt_assets_defs.schedules}})
        for name, keys in dbt_asset_graph.jobs.items():
            resolved = unresolved[name].selection.resolve(asset_graph)
            assert keys == sorted(key.to_user_string() for key in resolved), name
        for name, entry in dbt_asset_graph.schedules.items():
            job_name = dbt_assets_defs.resolve_schedule_def(name).job_name
            resolved = unresolved[job_name].selection.resolve(asset_graph)
            assert entry["assets"] == sorted(key.to_user_string() for key in resolved), name
"""


@pytest.fixture
def scheduled_repo(shop_repo: pytest.Pytester) -> pytest.Pytester:
    write_files(shop_repo.path, {"shop_dagster/definitions.py": SCHEDULED_DEFINITIONS})
    return shop_repo


def test_jobs_and_schedules_select_what_dagster_resolves_shown_in_the_snapshot_and_told_when_emptied(
    scheduled_repo: pytest.Pytester,
) -> None:
    write_files(scheduled_repo.path, {"tests/test_jobs.py": JOBS_TEST, "tests/test_graph.py": GRAPH_SNAPSHOT_TEST})
    scheduled_repo.runpytest("--snapshot-update").assert_outcomes(passed=2)
    text = (scheduled_repo.path / "tests/__snapshots__/test_graph/test_graph.yaml").read_text()
    assert text.startswith("# pytest-dbt-assets snapshot, format 1\nassets:\n")
    assert text.endswith(
        textwrap.dedent(
            """\
            jobs:
              acme_marts_job:
              - acme/marts/customers
              - acme/marts/orders
              marts_job:
              - acme/marts/customers
              - acme/marts/orders
              nightly_marts:
              - acme/marts/customers
              - acme/marts/orders
              staging_job:
              - acme/staging/stg_customers
              - acme/staging/stg_orders
            schedules:
              hourly_acme:
                assets:
                - acme/marts/customers
                - acme/marts/orders
                cron: 0 * * * *
                job: acme_marts_job
              nightly_marts_schedule:
                assets:
                - acme/marts/customers
                - acme/marts/orders
                cron: 0 2 * * *
                job: nightly_marts
              scores_daily:
                assets:
                - customer_scores
                cron: 0 5 * * *
            """
        )
    )
    scheduled_repo.runpytest().assert_outcomes(passed=2)

    # A translator change that empties a schedule fails the graph snapshot, in words.
    (scheduled_repo.path / "tests/test_jobs.py").unlink()  # its selections are spelled for acme/
    snapshot = scheduled_repo.path / "tests/__snapshots__/test_graph/test_graph.yaml"
    before = snapshot.read_text()

    # The translator's key prefix changes from acme/ to shop/; groups stay.
    definitions = scheduled_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(definitions.read_text().replace('AssetKey(["acme", folder', 'AssetKey(["shop", folder'))
    failed = scheduled_repo.runpytest("-vv")  # the whole "What changed" list, not pytest's first lines
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(
        [
            "*What changed:*",
            (
                "*job acme_marts_job: now selects NO assets (it selected 2 assets: acme/marts/customers, "
                "acme/marts/orders); its runs would do nothing*"
            ),
            (
                "*job nightly_marts: now also selects 2 assets: shop/marts/customers, shop/marts/orders; "
                "no longer selects 2 assets: acme/marts/customers, acme/marts/orders*"
            ),
            (
                "*schedule hourly_acme: now selects NO assets (it selected 2 assets: acme/marts/customers, "
                "acme/marts/orders); its runs would do nothing*"
            ),
            (
                "*schedule nightly_marts_schedule: now also selects 2 assets: shop/marts/customers, "
                "shop/marts/orders; no longer selects 2 assets: acme/marts/customers, acme/marts/orders*"
            ),
        ]
    )
    # The group job follows the new keys: told too, and nothing said about the unchanged one.
    failed.stdout.fnmatch_lines(["*job marts_job: now also selects 2 assets: shop/marts/customers*"])
    assert "schedule scores_daily" not in failed.stdout.str()
    assert snapshot.read_text() == before


def test_a_job_that_does_not_resolve_fails_with_dagsters_reason(scheduled_repo: pytest.Pytester) -> None:
    definitions = scheduled_repo.path / "shop_dagster/definitions.py"
    definitions.write_text(
        definitions.read_text().replace(
            "jobs=[marts_job, staging_job],",
            'jobs=[marts_job, staging_job, dg.define_asset_job("typo_job", selection=["acme/marts/custmers"])],',
        )
    )
    write_files(scheduled_repo.path, {"tests/test_graph.py": GRAPH_SNAPSHOT_TEST})
    result = scheduled_repo.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*DefinitionsError: Dagster could not resolve the jobs and schedules of your definitions:",
            "*Failed to resolve asset job typo_job",
            "*acme/marts/custmers*were selected, but no AssetsDefinition objects supply these keys*",
            "*Fix them in your Dagster code*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


# Plain data, no dbt: the snapshot document and its change lines.
