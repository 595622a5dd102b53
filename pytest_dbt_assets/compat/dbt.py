"""dbt-core, dbt-common and dbt-duckdb: the in-process runner, the worker (``pytest_dbt_assets/dbt/``)
and reading dbt's command line (``argv.py``).

dbt is imported inside each function: the plugin imports compat at start-up.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_dbt_assets.compat import field_names, lacks, shim


def close_duckdb_handles() -> None:
    """Close every DuckDB handle dbt-duckdb holds in this process (it keeps them open across
    commands, in a class attribute): reset dbt's adapters, close dbt-duckdb's environment."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import reset_adapters
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    reset_adapters()
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager.close_all_connections()


@shim(
    "dbt-duckdb",
    "dbt.adapters.factory.reset_adapters, DuckDBConnectionManager._ENV and .close_all_connections, Environment.close",
)
def check_close_duckdb_handles() -> str | None:
    return (
        lacks("dbt.adapters.factory", None, "reset_adapters")
        or lacks("dbt.adapters.duckdb.connections", "DuckDBConnectionManager", "_ENV", "close_all_connections")
        or lacks("dbt.adapters.duckdb.environments", "Environment", "close")
    )


@contextmanager
def partial_parse_ignoring_profile_hash() -> Iterator[None]:
    """Let dbt accept a partial-parse file made with another DuckDB path.

    dbt rejects the file when the profile's connection details differ; the plugin's profile
    differs between sessions only by its temporary folder, which the worker's cache key leaves
    out and checks everything else. Without the hook (another dbt), dbt simply parses in full.
    """
    try:
        from dbt.parser.manifest import ManifestLoader

        original = ManifestLoader.is_partial_parsable
    except (ImportError, AttributeError):
        yield
        return

    def is_partial_parsable(loader: Any, manifest: Any) -> Any:
        manifest.state_check.profile_hash = loader.manifest.state_check.profile_hash
        return original(loader, manifest)

    ManifestLoader.is_partial_parsable = is_partial_parsable  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ManifestLoader.is_partial_parsable = original  # type: ignore[method-assign]


@shim(
    "dbt-core",
    "dbt.parser.manifest.ManifestLoader.is_partial_parsable(self, manifest), .manifest, "
    "Manifest.state_check.profile_hash",
)
def check_partial_parse_ignoring_profile_hash() -> str | None:
    # Behaviour: a loader whose state differs from a saved manifest's by the profile only.
    if problem := lacks("dbt.parser.manifest", "ManifestLoader", "is_partial_parsable"):
        return problem
    try:
        from dbt.contracts.files import FileHash
        from dbt.contracts.graph.manifest import Manifest, ManifestStateCheck
        from dbt.parser.manifest import ManifestLoader
        from dbt.version import __version__

        same = FileHash.from_contents("")

        def manifest(profile: str) -> Any:
            made = Manifest()
            made.metadata.dbt_version = __version__
            made.state_check = ManifestStateCheck(
                vars_hash=same, project_env_vars_hash=same, profile_hash=FileHash.from_contents(profile)
            )
            return made

        loader = object.__new__(ManifestLoader)
        loader.manifest = manifest("this session's profile")
        with partial_parse_ignoring_profile_hash():
            valid, reason = loader.is_partial_parsable(manifest("another session's profile"))
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    return None if valid else f"a partial-parse file made with another profile is still refused ({reason})"


def move_node_roots(manifest: Any, made_in: str, project_dir: str) -> None:
    """Point the nodes of a manifest parsed in ``made_in`` at ``project_dir``: seeds keep the
    absolute folder they were parsed in (``root_path``; dbt reads the CSV from there)."""
    for node in manifest.nodes.values():
        root = getattr(node, "root_path", None)
        if isinstance(root, str) and (root == made_in or root.startswith(made_in + os.sep)):
            node.root_path = project_dir + root[len(made_in) :]


@shim("dbt-core", "SeedNode.root_path")
def check_move_node_roots() -> str | None:
    names = field_names("dbt.contracts.graph.nodes", "SeedNode")
    if isinstance(names, str):
        return names
    return None if "root_path" in names else "dbt.contracts.graph.nodes.SeedNode has no field root_path"


def write_manifest(manifest: Any, target_path: str) -> None:
    """Write ``manifest.json`` into ``target_path``, as dbt does after parsing."""
    from dbt.parser.manifest import write_manifest as write

    write(manifest, target_path)


@shim("dbt-core", "dbt.parser.manifest.write_manifest(manifest, target_path)")
def check_write_manifest() -> str | None:
    if problem := lacks("dbt.parser.manifest", None, "write_manifest"):
        return problem
    from dbt.parser.manifest import write_manifest as write

    parameters = list(inspect.signature(write).parameters)
    return None if parameters[:2] == ["manifest", "target_path"] else f"write_manifest takes ({', '.join(parameters)})"


def partial_parse_file_name() -> str:
    """The name of dbt's partial-parse file in the target folder."""
    from dbt.constants import PARTIAL_PARSE_FILE_NAME

    return str(PARTIAL_PARSE_FILE_NAME)


@shim("dbt-core", "dbt.constants.PARTIAL_PARSE_FILE_NAME")
def check_partial_parse_file_name() -> str | None:
    return lacks("dbt.constants", None, "PARTIAL_PARSE_FILE_NAME")


def refused_partial_parse(event: Any) -> str | None:
    """dbt's reason when ``event`` (a dbtRunner callback's) says it cannot use the partial-parse
    file, else None."""
    return str(event.info.msg) if event.info.name == "UnableToPartialParse" else None


@shim("dbt-core", "the event dbt.events.types.UnableToPartialParse")
def check_refused_partial_parse() -> str | None:
    return lacks("dbt.events.types", None, "UnableToPartialParse")


def compile_macro_template(macro: Any) -> None:
    """Compile ``macro``'s Jinja template into dbt's process-wide template cache, as dbt does
    the first time a command calls it."""
    from dbt_common.clients.jinja import template_cache

    template_cache.get_node_template(macro)


# dbt-common is pinned by dbt-core: read against the dbt-core versions that pin it.
@shim("dbt-core", "dbt_common.clients.jinja.template_cache.get_node_template")
def check_compile_macro_template() -> str | None:
    return lacks("dbt_common.clients.jinja", "template_cache", "get_node_template")


# Everything a `dbt build` on DuckDB imports, loaded once by the worker before any fork.
_WARM_MODULES = ("agate", "duckdb", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl", "dbt.cli.main", "dbt.task.build")


def warm_dbt_imports() -> None:
    """Import what a ``dbt build`` on DuckDB imports, so that forked children share it."""
    for module in _WARM_MODULES:
        importlib.import_module(module)


@shim("dbt-core", "the modules " + ", ".join(_WARM_MODULES))
def check_warm_dbt_imports() -> str | None:
    missing = []
    for module in _WARM_MODULES:
        try:
            found = importlib.util.find_spec(module)
        except ImportError:
            found = None
        if found is None:
            missing.append(module)
    return f"cannot find {', '.join(missing)}" if missing else None


@dataclass(frozen=True)
class DbtOption:
    """One option of a dbt command, as dbt's click command declares it."""

    flags: tuple[str, ...]  # every spelling: "--target", "-t"; "--no-partial-parse" too
    name: str  # click's parameter name: "target"
    takes_value: bool  # False for on/off flags and counters


@functools.cache
def dbt_commands() -> dict[tuple[str, ...], tuple[DbtOption, ...]]:
    """Every dbt command and group by its path (``()`` is ``dbt`` itself, ``("source",
    "freshness")`` a nested command), with its options, read from dbt's click command tree."""
    import click
    from dbt.cli.main import cli

    found: dict[tuple[str, ...], tuple[DbtOption, ...]] = {}

    def walk(node: click.Command, path: tuple[str, ...]) -> None:
        found[path] = tuple(
            DbtOption(
                flags=(*param.opts, *param.secondary_opts),
                name=param.name or "",
                takes_value=not param.is_flag and not param.count,
            )
            for param in node.params
            if isinstance(param, click.Option)
        )
        if isinstance(node, click.Group):
            for name, child in node.commands.items():
                walk(child, (*path, name))

    walk(cli, ())
    return found


@shim("dbt-core", "dbt.cli.main.cli, dbt's click command tree (Group.commands, Option.opts, name, is_flag)")
def check_dbt_commands() -> str | None:
    try:
        commands = dbt_commands()
    except (ImportError, AttributeError) as error:
        return f"dbt's click commands cannot be read: {error}"
    missing = [" ".join(path) for path in [("run",), ("build",), ("source", "freshness")] if path not in commands]
    if missing:
        return f"dbt has no command {', '.join(missing)}"
    options = {flag: option for option in commands[("run",)] for flag in option.flags}
    expected = {"--profiles-dir": "profiles_dir", "--target": "target", "-t": "target", "--vars": "vars"}
    wrong = [flag for flag, name in expected.items() if flag not in options or options[flag].name != name]
    if wrong or not options["--target"].takes_value:
        return f"dbt run's options are not read as expected: {', '.join(wrong) or '--target takes no value'}"
    return None
