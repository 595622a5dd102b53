"""Which assets a materialization runs: a Dagster or dbt selection resolved to asset keys,
the dbt nodes behind them (of every ``@dbt_assets``), the sources they read, and the guards
that say in words why a selection cannot run (indirect selection, partitions).

:func:`plan_run` reads the definitions once into a :class:`Plan`: what the run, its
sources and its description need, so nothing after it goes back to the definitions.

Dagster is imported inside the functions: ``definitions.py``, loaded with the plugin in
pytest's first hook, imports this module, and Dagster costs seconds to import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_dbt_assets.compat.dagster_dbt import dbt_assets_manifest, dbt_manifest_metadata_key
from pytest_dbt_assets.errors import PartitionKeyError, SelectionError

if TYPE_CHECKING:
    from dagster import AssetKey, AssetsDefinition, Definitions

_DBT_SYNTAX_HINT = "dbt_select takes dbt's --select syntax, e.g. '+customers', 'tag:finance' or 'path:models/marts'."
RELATION_TYPES = {"model", "seed", "snapshot"}
INDIRECT_SELECTION_VALUES = ("eager", "cautious", "buildable", "empty")


# The parts of a dbt manifest that failure text reads, merged over every @dbt_assets.
MERGED_MANIFEST_PARTS = ("nodes", "sources", "macros")


@dataclass(frozen=True)
class DbtNodes:
    """dbt nodes of the definitions under test, indexed by their Dagster asset key.

    Every ``@dbt_assets`` counts, each with its own manifest and translator: two dbt projects
    (or two manifests) in one code location keep all their nodes. ``manifest`` holds the
    ``nodes``, ``sources`` and ``macros`` of all those manifests (unique ids name their dbt
    project, so they do not collide).
    """

    by_key: dict[AssetKey, dict[str, Any]]
    sources_by_key: dict[AssetKey, dict[str, Any]]
    manifest: dict[str, Any]

    @classmethod
    def of(cls, defs: Definitions) -> DbtNodes:
        by_key: dict[Any, dict[str, Any]] = {}
        sources_by_key: dict[Any, dict[str, Any]] = {}
        merged: dict[str, dict[str, Any]] = {part: {} for part in MERGED_MANIFEST_PARTS}
        for assets_def in dbt_assets_definitions_of(defs):
            manifest, translator, project = dbt_assets_manifest(assets_def)
            for part in MERGED_MANIFEST_PARTS:
                merged[part].update(manifest.get(part) or {})
            for node in manifest["nodes"].values():
                if node["resource_type"] in RELATION_TYPES:
                    by_key[_asset_key(translator, manifest, node, project)] = node
            for source in manifest["sources"].values():
                sources_by_key[_asset_key(translator, manifest, source, project)] = source
        return cls(by_key=by_key, sources_by_key=sources_by_key, manifest=dict(merged))


def dbt_assets_definitions_of(defs: Definitions) -> list[AssetsDefinition]:
    """The ``@dbt_assets`` definitions (those carrying a dbt manifest) in ``defs``."""
    from dagster import AssetsDefinition

    manifest_key = dbt_manifest_metadata_key()
    found = []
    for item in defs.assets or []:
        if isinstance(item, AssetsDefinition) and any(
            manifest_key in (metadata or {}) for metadata in item.metadata_by_key.values()
        ):
            found.append(item)
    return found


@dataclass(frozen=True)
class Plan:
    """A selection of the definitions resolved once, for one run and its description.

    Attributes:
        keys: the selected asset keys, sorted by user string.
        nodes: the dbt nodes of every ``@dbt_assets``, by asset key.
        sources: the dbt sources a selected asset reads and no selected asset produces.
        checks: the names of the asset checks of the selected assets.
        parents: selected key (user string) -> its sorted parents that are selected too.
        python_steps: step name -> the keys of each executable asset that is not dbt's.
        check_outputs: output name of a dbt test's asset check -> (asset key, check name).
    """

    keys: tuple[AssetKey, ...]
    nodes: DbtNodes
    sources: tuple[dict[str, Any], ...]
    checks: tuple[str, ...]
    parents: dict[str, list[str]]
    python_steps: dict[str, frozenset[AssetKey]]
    check_outputs: dict[str, tuple[str, str]]

    @property
    def relations(self) -> list[tuple[str, str, str]]:
        """``(database, schema, name)`` of the relation each selected dbt node builds
        (ephemeral models have none)."""
        relations = []
        for key in self.keys:
            node = self.nodes.by_key.get(key)
            if node and node.get("relation_name") and node.get("config", {}).get("materialized") != "ephemeral":
                relations.append((node.get("database") or "", node["schema"], node.get("alias") or node["name"]))
        return relations

    @property
    def unique_ids(self) -> set[str]:
        """The dbt unique ids of the selected dbt nodes."""
        return {node["unique_id"] for key in self.keys if (node := self.nodes.by_key.get(key))}


def plan_run(
    defs: Definitions,
    select: Any = None,
    dbt_select: str | Sequence[str] | None = None,
    *,
    partition_key: str | None = None,
    indirect_selection: str | None = None,
    dbt_only: bool = False,
) -> Plan:
    """Resolve ``select`` / ``dbt_select`` (see :func:`resolve_selection`) into a :class:`Plan`,
    checking that it can run. ``dbt_only`` keeps the dbt assets of the selection only.

    Raises:
        SelectionError: the selection matches nothing, or ``indirect_selection`` is not dbt's.
        PartitionKeyError: a partitioned asset is selected and ``partition_key`` is None.
    """
    __tracebackhide__ = True
    from dagster import AssetsDefinition

    validate_indirect_selection(indirect_selection)
    selected = resolve_selection(defs, select, dbt_select)
    if partition_key is None:
        validate_unpartitioned(defs, selected)
    nodes = DbtNodes.of(defs)
    if dbt_only:
        selected = {key for key in selected if key in nodes.by_key}
    asset_graph = defs.resolve_asset_graph()
    dbt_defs = dbt_assets_definitions_of(defs)
    python_steps = {
        assets_def.node_def.name: frozenset(assets_def.keys)
        for assets_def in defs.assets or []
        if isinstance(assets_def, AssetsDefinition) and assets_def not in dbt_defs and assets_def.is_executable
    }
    check_outputs = {
        output: (spec.asset_key.to_user_string(), spec.name)
        for assets_def in dbt_defs
        for output, spec in assets_def.node_check_specs_by_output_name.items()
    }
    return Plan(
        keys=tuple(sorted(selected, key=lambda key: key.to_user_string())),
        nodes=nodes,
        sources=tuple(needed_sources(defs, nodes, selected)),
        checks=tuple(sorted({check.name for key in selected for check in asset_graph.get(key).check_keys})),
        parents={
            key.to_user_string(): sorted(p.to_user_string() for p in asset_graph.get(key).parent_keys if p in selected)
            for key in sorted(selected, key=lambda key: key.to_user_string())
        },
        python_steps=python_steps,
        check_outputs=check_outputs,
    )


def _asset_key(translator: Any, manifest: Mapping[str, Any], node: Mapping[str, Any], project: Any) -> AssetKey:
    try:
        return translator.get_asset_spec(manifest, node["unique_id"], project).key
    except AttributeError:  # translators of older dagster-dbt
        return translator.get_asset_key(node)


def resolve_selection(
    defs: Definitions, select: Any = None, dbt_select: str | Sequence[str] | None = None
) -> set[AssetKey]:
    """The asset keys that ``select`` (Dagster syntax) and ``dbt_select`` (dbt syntax) name.

    Both may be given: the run takes their union. Neither: every materializable asset.
    Raises :class:`SelectionError` quoting the selection when it matches nothing.
    """
    __tracebackhide__ = True
    from dagster import AssetSelection
    from dagster_dbt import build_dbt_asset_selection

    asset_graph = defs.resolve_asset_graph()
    materializable = set(asset_graph.materializable_asset_keys)
    if select is None and dbt_select is None:
        return materializable

    keys: set[AssetKey] = set()
    if select is not None:
        try:
            if isinstance(select, str):
                selection = AssetSelection.from_string(select)
            else:
                selection = AssetSelection.from_coercible(select)
            matched = set(selection.resolve(asset_graph)) & materializable
        except Exception as exc:  # noqa: BLE001 - any Dagster selection error, told in words
            raise SelectionError(f"select={select!r} is not a valid Dagster asset selection: {exc}") from None
        if not matched:
            raise SelectionError(
                f"select={select!r} matches no materializable asset. Known keys: "
                + ", ".join(sorted(k.to_user_string() for k in materializable))
            )
        keys |= matched
    if dbt_select is not None:
        words = dbt_select if isinstance(dbt_select, str) else " ".join(dbt_select)
        dbt_defs = dbt_assets_definitions_of(defs)
        if not dbt_defs:
            raise SelectionError(f"dbt_select={words!r} given, but the definitions hold no @dbt_assets.")
        matched = set()
        for assets_def in dbt_defs:
            try:
                matched |= set(build_dbt_asset_selection([assets_def], dbt_select=words).resolve(asset_graph))
            except Exception as exc:  # noqa: BLE001 - dbt's selector errors have no common base
                raise SelectionError(
                    f"dbt_select={words!r} is not a valid dbt selection: {_dbt_error_text(exc)}. {_DBT_SYNTAX_HINT}"
                ) from None
        matched &= materializable
        if not matched:
            raise SelectionError(
                f"dbt_select={words!r} matches no dbt asset. Check the model names, tags and "
                f"paths in the selection. {_DBT_SYNTAX_HINT}"
            )
        keys |= matched
    return keys


def _dbt_error_text(exc: BaseException) -> str:
    """dbt's message without its ``Runtime Error`` heading, on one line."""
    text = str(getattr(exc, "msg", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith("Error"):
        lines = lines[1:]
    return " ".join(lines).rstrip(".")


def needed_sources(defs: Definitions, nodes: DbtNodes, selected: set[AssetKey]) -> list[dict[str, Any]]:
    """dbt sources that a selected asset reads and no selected asset produces."""
    asset_graph = defs.resolve_asset_graph()
    parents: set[Any] = set()
    for key in selected:
        parents |= set(asset_graph.get(key).parent_keys)
    return [source for key, source in nodes.sources_by_key.items() if key in parents and key not in selected]


def validate_indirect_selection(value: str | None) -> None:
    """Raise :class:`SelectionError` unless ``value`` is None or one of dbt's values."""
    __tracebackhide__ = True
    if value is not None and value not in INDIRECT_SELECTION_VALUES:
        raise SelectionError(
            f"indirect_selection={value!r} is not one of dbt's values: "
            + ", ".join(repr(v) for v in INDIRECT_SELECTION_VALUES)
            + ". Leave it out for production's 'eager' (a test runs when any of its parents is selected), "
            "or pass 'cautious' to run only tests whose parents are all selected."
        )


def validate_unpartitioned(defs: Definitions, selected: set[AssetKey]) -> None:
    """Raise :class:`PartitionKeyError` when a selected asset is partitioned: a run of it
    needs ``partition_key`` (Dagster's own check only says ``CheckError``)."""
    __tracebackhide__ = True
    asset_graph = defs.resolve_asset_graph()
    partitioned = sorted(
        (key.to_user_string(), asset_graph.get(key).partitions_def)
        for key in selected
        if asset_graph.get(key).partitions_def is not None
    )
    if not partitioned:
        return
    name, partitions_def = partitioned[0]
    keys = ", ".join(name for name, _ in partitioned[:5]) + (", ..." if len(partitioned) > 5 else "")
    raise PartitionKeyError(
        f"{keys} {'is' if len(partitioned) == 1 else 'are'} partitioned, and no partition_key was given. "
        f"Pass partition_key= to dbt_assets_materialize, e.g. "
        f"dbt_assets_materialize(..., partition_key={_example_partition(partitions_def)!r}). "
        f"Partitions of {name}: {describe_partitions(partitions_def)}."
    )


def describe_partitions(partitions_def: Any) -> str:
    """A few of the partition keys: all of up to 4, else the first two and the last."""
    try:
        keys = list(partitions_def.get_partition_keys())
    except Exception:  # noqa: BLE001 - dynamic partitions need an instance; say what it is
        return f"{type(partitions_def).__name__} (keys known at run time only)"
    if not keys:
        return "none yet"
    if len(keys) <= 4:
        return ", ".join(keys)
    return f"{keys[0]}, {keys[1]}, ..., {keys[-1]} ({len(keys)} in all)"


def _example_partition(partitions_def: Any) -> str:
    try:
        keys = list(partitions_def.get_partition_keys())
    except Exception:  # noqa: BLE001
        return "<key>"
    return keys[-1] if keys else "<key>"
