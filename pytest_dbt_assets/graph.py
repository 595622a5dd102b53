"""The resolved asset graph as plain, sorted data, ready to assert on and to snapshot."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.compat.dagster import is_dagster_own_job, job_asset_keys
from pytest_dbt_assets.errors import DbtAssetsError, DefinitionsError, UnknownAssetKeyError
from pytest_dbt_assets.mermaid import flowchart

if TYPE_CHECKING:
    from dagster import Definitions


@dataclass(frozen=True, eq=True)
class AssetGraph:
    """What Dagster resolves from the definitions under test, after the user's translator.

    Keys are user strings (``"acme/marts/customers"``). Ephemeral dbt models do not appear:
    like Dagster, the graph walks through them. dbt sources and other assets that no
    definition produces appear as keys with the group Dagster gives them.

    Attributes:
        keys: every asset key, sorted.
        deps: key -> sorted list of its direct parent keys.
        groups: key -> group name.
        checks: key -> sorted check names (keys without checks are left out).
        jobs: job name -> sorted asset keys the job materializes, as Dagster resolves its
            selection (``define_asset_job``, a dbt selection, a schedule's job); ``[]`` for a
            job of plain ops or a selection that matches nothing. Dagster's own implicit jobs
            are left out.
        schedules: schedule name -> ``{"cron": ..., "job": ..., "assets": [...]}``, the
            sorted asset keys its job materializes (no ``"job"`` for a schedule given
            ``target=`` instead of a named job).
    """

    keys: list[str]
    deps: dict[str, list[str]]
    groups: dict[str, str]
    checks: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def diff(self, base: str | None = None) -> Any:
        """What the working tree changes against the git revision ``base`` (default:
        ``dbt_assets_base``, else origin/main): an :class:`~pytest_dbt_assets.diff.impact.Impact`
        with the assets added, removed, modified (and why) and downstream, breaking changes,
        checks, jobs and schedules. The base's graph comes from a pytest run of its tree, kept in
        pytest's cache for later runs.

        Raises:
            DbtAssetsError: this graph was not made by the ``dbt_asset_graph`` fixture.
        """
        differ: Callable[[str | None], Any] | None = getattr(self, "_differ", None)
        if differ is None:
            raise DbtAssetsError("Only the dbt_asset_graph fixture's graph knows the definitions it compares.")
        return differ(base)

    def _bind_differ(self, differ: Callable[[str | None], Any]) -> None:
        """Set how :meth:`diff` compares these definitions with a base revision (the fixture's
        job; not data: equality and snapshots ignore it)."""
        object.__setattr__(self, "_differ", differ)

    def upstream(self, key: str) -> set[str]:
        """The direct parents of ``key``."""
        return set(self.deps[self._known(key)])

    def downstream(self, key: str) -> set[str]:
        """The direct children of ``key``."""
        key = self._known(key)
        return {child for child, parents in self.deps.items() if key in parents}

    def mermaid(self) -> str:
        """The graph as a Mermaid flowchart (one subgraph per group), stable text."""
        return flowchart(self.deps, groups=self.groups)

    def to_data(self) -> dict[str, Any]:
        """Plain sorted data: one entry per asset with its group, deps and checks; then the
        jobs and schedules, only when the definitions have some."""
        assets: dict[str, Any] = {}
        for key in self.keys:
            entry: dict[str, Any] = {"group": self.groups.get(key)}
            entry["deps"] = list(self.deps.get(key, []))
            if self.checks.get(key):
                entry["checks"] = list(self.checks[key])
            assets[key] = entry
        data: dict[str, Any] = {"assets": assets}
        if self.jobs:
            data["jobs"] = {name: list(keys) for name, keys in self.jobs.items()}
        if self.schedules:
            data["schedules"] = {
                name: {**entry, "assets": list(entry["assets"])} for name, entry in self.schedules.items()
            }
        return data

    def _known(self, key: str) -> str:
        if key not in self.deps:
            close = difflib.get_close_matches(key, self.keys, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownAssetKeyError(
                f"{key!r} is not an asset key of dbt_asset_graph.{hint} Keys are user strings with "
                "'/' between the parts of the Dagster asset key, as your translator makes them "
                "(e.g. 'acme/marts/customers'); dbt_asset_graph.keys lists them all."
            )
        return key


def build_asset_graph(defs: Definitions) -> AssetGraph:
    """Resolve ``defs`` the way Dagster does and flatten it to plain data."""
    resolved = defs.resolve_asset_graph()
    keys: list[str] = []
    deps: dict[str, list[str]] = {}
    groups: dict[str, str] = {}
    checks: dict[str, list[str]] = {}
    for asset_key in resolved.get_all_asset_keys():
        node = resolved.get(asset_key)
        key = asset_key.to_user_string()
        keys.append(key)
        deps[key] = sorted(parent.to_user_string() for parent in node.parent_keys)
        groups[key] = node.group_name
        names = sorted(check_key.name for check_key in node.check_keys)
        if names:
            checks[key] = names
    keys.sort()
    jobs, schedules = resolve_jobs_and_schedules(defs)
    return AssetGraph(
        keys=keys,
        deps={key: deps[key] for key in keys},
        groups={key: groups[key] for key in keys},
        checks={key: checks[key] for key in keys if key in checks},
        jobs=jobs,
        schedules=schedules,
    )


def resolve_jobs_and_schedules(defs: Definitions) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Each job's and schedule's asset keys, resolved as Dagster resolves them when it loads
    the code location: every selection against the whole asset graph, after the translator.

    Raises:
        DefinitionsError: with Dagster's message, when a job's selection does not resolve.
    """
    __tracebackhide__ = True
    # Imported here, where the definitions are loaded: not at start-up (dagster costs seconds).
    from dagster import DagsterError

    try:
        repository = defs.get_repository_def()
        jobs = {
            job.name: sorted(key.to_user_string() for key in job_asset_keys(job))
            for job in repository.get_all_jobs()
            if not is_dagster_own_job(job.name)
        }
        schedules: dict[str, dict[str, Any]] = {}
        for schedule in repository.schedule_defs:
            cron = schedule.cron_schedule
            entry: dict[str, Any] = {"cron": cron if isinstance(cron, str) else list(cron)}
            if not is_dagster_own_job(schedule.job_name):
                entry["job"] = schedule.job_name
            entry["assets"] = sorted(
                key.to_user_string() for key in job_asset_keys(repository.get_job(schedule.job_name))
            )
            schedules[schedule.name] = entry
    except DagsterError as exc:
        reasons: list[str] = []
        cause: BaseException | None = exc
        while cause is not None:  # Dagster wraps the reason: "Failed to resolve asset job x"
            reasons.append(str(cause).strip().replace("\n", "\n  "))
            cause = cause.__cause__
        raise DefinitionsError(
            "Dagster could not resolve the jobs and schedules of your definitions:\n  "
            + "\n  ".join(reasons)
            + "\nFix them in your Dagster code; `dagster definitions validate` reports the same problem."
        ) from None
    return dict(sorted(jobs.items())), dict(sorted(schedules.items()))
