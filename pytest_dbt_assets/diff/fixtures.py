"""The comparison with a base revision, as pytest sees it: the ``dbt_assets_diff`` fixture,
``dbt_asset_graph.diff(base=...)``, and where base results are kept."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_dbt_assets.baseline import shared_folder
from pytest_dbt_assets.diff.revision import BaseRequest, BaseRuns, Revision, repository_root, resolve_revision
from pytest_dbt_assets.errors import DbtAssetsError, RevisionError
from pytest_dbt_assets.fixture_base import fail, marker_kwargs, session_of, source_rows
from pytest_dbt_assets.workspace import main_project

if TYPE_CHECKING:
    from dagster import Definitions

    from pytest_dbt_assets.diff.data import DataDiff
    from pytest_dbt_assets.diff.impact import Impact
    from pytest_dbt_assets.graph import AssetGraph
    from pytest_dbt_assets.materialize import Materialization
    from pytest_dbt_assets.project import DbtAssetsProject

# The report property each data diff's summary travels in (to the xdist controller too).
DIFF_PROPERTY = "dbt_assets_diff"
_IMPACTS = pytest.StashKey[dict[Any, Any]]()
_RECORDS = pytest.StashKey[dict[int, tuple[Any, dict[str, Any]]]]()


class DiffAssets(Protocol):
    """The type of the ``dbt_assets_diff`` fixture."""

    def __call__(
        self,
        base: str | None = None,
        select: str | Sequence[str] | None = None,
        *,
        dbt_select: str | None = None,
        examples: int = 3,
        profile: bool = False,
        baseline: bool | None = None,
    ) -> DataDiff: ...


@dataclass(frozen=True)
class _Base:
    runs: BaseRuns
    revision: Revision


def _base(config: pytest.Config, factory: pytest.TempPathFactory | None, name: str | None) -> _Base:
    """The base revision asked for (call > ``dbt_assets_base`` > origin/main) and the store of its
    results: pytest's cache folder, kept between sessions, else the run's basetemp."""
    settings = session_of(config).settings
    repo = repository_root(settings.rootdir)
    revision = resolve_revision(repo, name if name is not None else settings.base)
    if config.cache is not None:
        cache_root = Path(config.cache.mkdir("dbt_assets_base"))
    elif factory is not None:
        cache_root = shared_folder(factory.getbasetemp(), xdist_worker=hasattr(config, "workerinput")) / "base"
    else:
        raise RevisionError(
            "the impact told at the end of a run keeps the base revision's build in pytest's cache, which "
            "-p no:cacheprovider turned off: run without that option."
        )
    return _Base(BaseRuns(repo, cache_root), revision)


def graph_impact(
    config: pytest.Config, defs: Definitions, graph: AssetGraph, base: str | None, factory: Any = None
) -> Impact:
    """How the working tree's graph differs from the base revision's."""
    from pytest_dbt_assets.diff.impact import compare_graphs

    found = _base(config, factory, base)
    settings = session_of(config).settings
    result, _ = found.runs.result(
        BaseRequest(found.revision, caller_dir=settings.rootdir, rootdir=settings.rootdir, inifile=config.inipath)
    )
    return compare_graphs(result["graph"], current_record(config, defs, graph), base_label=found.revision.label)


def current_record(config: pytest.Config, defs: Definitions, graph: AssetGraph) -> dict[str, Any]:
    """The working tree's graph record, made once per definitions object of the session (every
    comparison of a session reads the same definitions)."""
    from pytest_dbt_assets.diff.export import export_graph

    records = config.stash.setdefault(_RECORDS, {})
    if id(defs) not in records:
        records[id(defs)] = (defs, export_graph(defs, graph))  # holding defs keeps its id unique
    return records[id(defs)][1]


def session_impact(config: pytest.Config, base: str | None) -> Impact:
    """The impact against ``base`` (None: ``dbt_assets_base``) outside any test: in the xdist
    controller, or at the end of a run. The definitions load in a temporary folder of this
    process, once per session.

    Raises:
        DbtAssetsError: no dbt project, or the definitions or the base revision cannot load.
    """
    session = session_of(config)
    if session.settings.project_dir is None:
        raise RevisionError("there is no dbt project to compare")
    base = base if base is not None else session.settings.base  # one load for the report and the selection
    cached = config.stash.get(_IMPACTS, {})
    if base not in cached:
        with tempfile.TemporaryDirectory(prefix="dbt-assets-impact-") as work:
            defs = session.load_definitions(main_project(session.workspace.build(Path(work))))  # no worker
            cached[base] = graph_impact(config, defs, session.build_graph(defs), base)
        config.stash[_IMPACTS] = cached
    return cached[base]


@pytest.fixture
def dbt_assets_diff(
    request: pytest.FixtureRequest,
    dbt_assets_materialize: Any,
    dbt_assets_projects: dict[str, DbtAssetsProject],
    dbt_assets_defs: Definitions,
    dbt_asset_graph: AssetGraph,
    dbt_assets_data: Mapping[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> DiffAssets:
    """Function: ``dbt_assets_diff(base=None, select=None, *, dbt_select=None, examples=3,
    profile=False, baseline=None) -> DataDiff``.

    Builds the selection twice on the same source data: at the base revision (its tree read
    from git, built by a pytest run of its own; kept in pytest's cache for later runs) and in
    this test's database from the working tree, then compares each asset's rows by its unique
    key (its dbt ``unique`` test or contract; else whole rows) and its columns. ``base`` defaults
    to ``dbt_assets_base`` (origin/main); ``baseline=True`` (or the marker's) starts both sides
    from their revision's session baseline. Costs one nested pytest run the first time a base
    commit and selection are asked.
    """
    from pytest_dbt_assets.diff.relations import compare_relations

    config = request.config
    settings = session_of(config).settings
    project = main_project(dbt_assets_projects)
    data = source_rows(dbt_assets_data, marker_kwargs(request))

    def diff(
        base: str | None = None,
        select: str | Sequence[str] | None = None,
        *,
        dbt_select: str | None = None,
        examples: int = 3,
        profile: bool = False,
        baseline: bool | None = None,
    ) -> DataDiff:
        __tracebackhide__ = True
        if select is not None and not isinstance(select, (str, list, tuple)):
            fail(RevisionError("dbt_assets_diff(select=...) takes asset keys as strings ('a/b', or a list of them)."))
        try:
            found = _base(config, tmp_path_factory, base)
            built: Materialization = dbt_assets_materialize(select, dbt_select=dbt_select, baseline=baseline)
            result, folder = found.runs.result(
                BaseRequest(
                    found.revision,
                    caller_dir=request.path.parent,
                    rootdir=settings.rootdir,
                    inifile=config.inipath,
                    data_dir=settings.data_dir,
                    materialize=True,
                    select=list(select) if isinstance(select, tuple) else select,
                    dbt_select=dbt_select,
                    data=_plain_rows(data),
                    baseline=baseline if baseline is not None else marker_kwargs(request).get("baseline"),
                )
            )
            base_run = result.get("materialization") or {}
            if not base_run.get("success", False):
                raise RevisionError(
                    f"The selection failed to build at the base revision {found.revision.label}, so its data "
                    "cannot be compared:\n  " + "\n  ".join(base_run.get("failures") or ["(no failure recorded)"])
                )
            compared = compare_relations(
                project,
                current_record(config, dbt_assets_defs, dbt_asset_graph),
                built.materialized,
                result,
                folder,
                project.manifest,
                label=found.revision.label,
                examples=examples,
                profile=profile,
            )
        except DbtAssetsError as error:
            fail(error)
        request.node.user_properties.append((DIFF_PROPERTY, travelling(compared)))
        return compared

    return diff


def _plain_rows(data: Mapping[str, Any]) -> dict[str, Any]:
    """Source rows as JSON can carry them to the base run: DataFrames as lists of dicts,
    paths as strings."""
    plain: dict[str, Any] = {}
    for table, rows in data.items():
        if hasattr(rows, "to_dict"):
            plain[table] = rows.to_dict(orient="records")
        elif isinstance(rows, Path):
            plain[table] = str(rows.resolve())
        else:
            plain[table] = rows
    return plain


def travelling(compared: DataDiff) -> dict[str, Any]:
    """A data diff as plain data for the run's report (a test report carries it to the xdist
    controller): its base, its lines in words, and which assets break downstream."""
    return {
        "base": compared.base,
        "lines": compared.describe(),
        "tables": {key: table.describe() for key, table in compared.tables.items()},
        "breaking": sorted(key for key, table in compared.tables.items() if table.breaking),
        "unchanged": sorted(key for key, table in compared.tables.items() if table.unchanged()),
    }
