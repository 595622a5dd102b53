"""Warnings that Dagster, dagster-dbt, dbt and the emulator raise inside their own code while
the plugin drives them (an API of Dagster's that dagster-dbt calls is deprecated, a class
dagster-dbt builds is in beta) are not the user's to act on: they are dropped where the
plugin drives them. A warning attributed to the user's own code (a deprecated call in their
asset) is left alone: filters match the module a warning is attributed to."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# The packages whose own code raises them: Dagster and its integrations, dbt, the emulator.
UPSTREAM_MODULES = r"(dagster(_\w+)?|dbt(_\w+)?|fakesnow|sqlglot(rs|c)?)(\..*)?$"
# The API-lifecycle warnings: deprecations and Dagster's beta, preview and supersession notes.
_DAGSTER_LIFECYCLE = ("BetaWarning", "PreviewWarning", "SupersessionWarning")


@contextmanager
def upstream_warnings_dropped() -> Iterator[None]:
    """Inside: deprecation and API-lifecycle warnings raised in upstream packages' code are dropped."""
    import dagster

    categories: list[type[Warning]] = [DeprecationWarning, PendingDeprecationWarning, FutureWarning]
    categories += [cls for name in _DAGSTER_LIFECYCLE if isinstance(cls := getattr(dagster, name, None), type)]
    with warnings.catch_warnings():
        for category in categories:
            warnings.filterwarnings("ignore", category=category, module=UPSTREAM_MODULES)
        yield
