"""dagster-dbt's Dagster components: the ``DbtProjectComponent`` behind an assets definition, and
the resolution context its ``cli_args`` are templated in. Apart from :mod:`.dagster_dbt` because
only code locations built from components reach them.

dagster-dbt is imported inside each function: the plugin imports compat at start-up, and
importing dagster-dbt costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_dbt_assets.compat import missing_attributes, shim


def dbt_component_of(assets_def: Any) -> tuple[Any, Any] | None:
    """The ``DbtProjectComponent`` that built ``assets_def`` and the resolution context its
    ``cli_args`` are templated in; None for any other assets definition.

    The component builds ``DbtCliResource(project)`` inside its asset, where no resource
    override reaches; the plugin rebuilds that asset around the component's public
    ``execute(context, dbt)`` with a resource of its own, and needs both to do so.
    """
    from dagster_dbt import DbtProjectComponent

    function: Any = getattr(getattr(getattr(assets_def, "op", None), "compute_fn", None), "decorated_fn", None)
    code = getattr(function, "__code__", None)
    if code is None or not function.__closure__:
        return None
    cells = dict(zip(code.co_freevars, function.__closure__, strict=False))
    if "self" not in cells or "res_ctx" not in cells:
        return None
    component = cells["self"].cell_contents
    if not isinstance(component, DbtProjectComponent):
        return None
    return component, cells["res_ctx"].cell_contents


@shim("dagster-dbt", "DbtProjectComponent.build_defs_from_state's inner asset function closing over self and res_ctx")
def check_dbt_component_of() -> str | None:
    from dagster_dbt import DbtProjectComponent

    inner = [
        const
        for const in DbtProjectComponent.build_defs_from_state.__code__.co_consts
        if hasattr(const, "co_freevars") and {"self", "res_ctx"} <= set(const.co_freevars)
    ]
    return None if inner else "build_defs_from_state has no inner function closing over self and res_ctx"


@contextmanager
def component_resolution_context(context: Any) -> Iterator[None]:
    """Make ``context`` the one ``DbtProjectComponent.get_cli_args`` templates ``cli_args`` in
    (``{{ partition_key }}`` and friends), as the component's own asset does."""
    from dagster_dbt.components.dbt_component_utils import _set_resolution_context

    with _set_resolution_context(context):
        yield


@shim("dagster-dbt", "dagster_dbt.components.dbt_component_utils._set_resolution_context")
def check_component_resolution_context() -> str | None:
    from dagster_dbt.components import dbt_component_utils

    return missing_attributes(dbt_component_utils, "_set_resolution_context")
