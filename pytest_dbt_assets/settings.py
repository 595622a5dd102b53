"""Configuration, resolved once into a frozen dataclass (CLI > ini > default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_dbt_assets.components import find_dg_project
from pytest_dbt_assets.discovery import find_code_dbt_projects, package_folder

# name -> help text, shared by the ini key `dbt_assets_<name>` and the flag `--dbt-assets-<name>`.
OPTIONS = {
    "project_dir": (
        "folder holding dbt_project.yml, or several (one a line in the ini file; the flag "
        "repeated) for a code location with several dbt projects (default: the rootdir, if it "
        "holds one; else the dbt projects of a Dagster components project's "
        "DbtProjectComponents, or those the definitions' DbtProject(project_dir=...) calls "
        "name, each tested on its own temporary copy)"
    ),
    "definitions": (
        "`package.module:attr` of your dagster.Definitions (default: a Dagster components "
        "project's definitions, found from [tool.dg.project]; else @dbt_assets built from "
        "the manifest with dagster-dbt's defaults)"
    ),
    "data_dir": "folder of source data files <source>/<table>.csv|.parquet|.json",
    "runner": (
        "how dagster-dbt's dbt commands run: 'worker' (default: a warm dbt process the "
        "DbtCliResource reaches through its dbt_executable) or 'subprocess' (dagster-dbt's "
        "plain path: a new dbt process per command)"
    ),
    "baseline_select": (
        "dbt selection (--select syntax) built once (and kept for later runs) into the session baseline that tests "
        "marked dbt_assets(baseline=True) start from (default: the whole dbt project; dbt tests "
        "are not run)"
    ),
    "warehouse": (
        "the SQL dialect of the dbt project, where its profiles.yml cannot tell (default: the type of "
        "your profile's default target, else duckdb): duckdb, snowflake or snowflake:DATABASE.SCHEMA "
        "(the database and schema your models build in), or another adapter's name"
    ),
    "base": (
        "the git revision that dbt_assets_diff, dbt_asset_graph.diff() and --dbt-assets-impact compare "
        "with (default: origin/main)"
    ),
    "cache_dir": (
        "folder of the plugin's cache (parsed manifests, partial-parse files, baseline templates), e.g. one "
        "your CI keeps between jobs (default: <dbt project>/target/dbt_assets_cache)"
    ),
    "report": "write a Markdown report for the pull request to this file: impact, data diffs, failed snapshots",
    "changed_since": (
        "run only the tests a change since this git revision touches: a test that uses the plugin's fixtures "
        "is deselected when what it reached in its last recorded run (kept in pytest's cache) did not change, "
        "and neither did its file nor a conftest.py above it"
    ),
}
RUNNERS = ("worker", "subprocess")
DEFAULT_BASE = "origin/main"
# Options that take several values: a linelist ini key, a repeatable flag.
SEVERAL = ("project_dir",)
# Switches: the ini key takes true/false, the flag turns them on.
FLAGS = {
    "mermaid": "write each graph snapshot's Mermaid flowchart next to it as a .md file",
    "summary": "print a table of materialized assets, row counts and checks per test (also on -v)",
    "impact": "print which assets the working tree changes against the base revision (see base), downstream too",
}


@dataclass(frozen=True)
class Settings:
    """Where the user's dbt project(s), Dagster definitions and source data are.

    ``project_dirs`` holds every dbt project of the code location (several when a components
    project has several ``DbtProjectComponent``s), ``project_dir`` the first of them: the
    project whose temporary copy holds the session's database. Given only ``project_dir``,
    ``project_dirs`` is that one folder.
    """

    rootdir: Path
    project_dir: Path | None
    definitions: str | None
    data_dir: Path | None
    runner: str = "worker"
    mermaid: bool = False
    summary: bool = False
    baseline_select: str | None = None
    project_dirs: tuple[Path, ...] = ()
    warehouse: str | None = None
    base: str = DEFAULT_BASE
    report: Path | None = None
    impact: bool = False
    cache_dir: Path | None = None
    changed_since: str | None = None

    def __post_init__(self) -> None:
        if not self.project_dirs and self.project_dir is not None:
            object.__setattr__(self, "project_dirs", (self.project_dir,))
        elif self.project_dirs and self.project_dir is None:
            object.__setattr__(self, "project_dir", self.project_dirs[0])


def resolve_settings(
    *,
    rootdir: Path,
    ini_dir: Path,
    invocation_dir: Path,
    cli: Mapping[str, str | list[str] | None],
    ini: Mapping[str, str | list[str] | None],
    flags: dict[str, bool] | None = None,
) -> Settings:
    """Combine command-line and ini values; relative paths resolve against where they were
    written (the ini file's folder, or the folder pytest was started from)."""

    def given(raw: str | list[str] | None) -> list[str] | None:
        """Its non-empty values (a key can be a list: ``dbt_assets_project_dir``), or None."""
        if raw is None:
            return None
        values = [item.strip() for item in ([raw] if isinstance(raw, str) else raw) if item.strip()]
        return values or None

    def values(name: str) -> tuple[list[str] | None, Path]:
        if (raw := given(cli.get(name))) is not None:
            return raw, invocation_dir
        if (raw := given(ini.get(name))) is not None:
            return raw, ini_dir
        return None, rootdir

    def value(name: str) -> tuple[str | None, Path]:
        raw, base = values(name)
        return (raw[-1] if raw is not None else None), base

    def path(name: str) -> Path | None:
        raw, base = value(name)
        return None if raw is None else (base / raw).resolve()

    runner = value("runner")[0]
    runner = runner if runner is not None else "worker"
    if runner not in RUNNERS:
        raise ValueError(f"dbt_assets_runner = {runner!r}: choose one of {', '.join(RUNNERS)}.")
    raw_dirs, base = values("project_dir")
    project_dirs: tuple[Path, ...] = tuple(dict.fromkeys((base / raw).resolve() for raw in raw_dirs or ()))
    if not project_dirs and (rootdir / "dbt_project.yml").is_file():
        project_dirs = (rootdir,)
    project_dir = project_dirs[0] if project_dirs else None
    definitions = value("definitions")[0]
    if project_dir is None or definitions is None:
        project_dirs, definitions = _from_dg_project(rootdir, project_dirs, definitions)
    if not project_dirs and definitions is not None:
        project_dirs = _from_dagster_code(rootdir, definitions)
    return Settings(
        rootdir=rootdir,
        project_dir=project_dirs[0] if project_dirs else None,
        project_dirs=project_dirs,
        definitions=definitions,
        data_dir=path("data_dir"),
        runner=runner,
        mermaid=bool((flags or {}).get("mermaid")),
        summary=bool((flags or {}).get("summary")),
        baseline_select=value("baseline_select")[0],
        warehouse=value("warehouse")[0],
        base=revision if (revision := value("base")[0]) is not None else DEFAULT_BASE,
        report=path("report"),
        cache_dir=path("cache_dir"),
        impact=bool((flags or {}).get("impact")),
        changed_since=value("changed_since")[0],
    )


def _from_dagster_code(rootdir: Path, definitions: str) -> tuple[Path, ...]:
    """The dbt projects the definitions' package names in its source
    (``DbtProject(project_dir=...)``, ``DbtCliResource(project_dir=...)``), the package
    looked for in the rootdir and its ``src/`` (see :mod:`pytest_dbt_assets.discovery`)."""
    package = package_folder(definitions, (rootdir, rootdir / "src"))
    return () if package is None else find_code_dbt_projects(package, cwd=rootdir)


def _from_dg_project(
    rootdir: Path, project_dirs: tuple[Path, ...], definitions: str | None
) -> tuple[tuple[Path, ...], str | None]:
    """What a Dagster components project at the rootdir (``[tool.dg.project]`` in
    pyproject.toml or dg.toml) says where not set: its definitions and its dbt projects (every
    ``DbtProjectComponent``'s, in the order of their folders)."""
    dg_project = find_dg_project(rootdir)
    if dg_project is None:
        return project_dirs, definitions
    return project_dirs or dg_project.dbt_project_dirs, (
        definitions if definitions is not None else dg_project.definitions
    )
