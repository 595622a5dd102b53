"""The one place that touches syrupy's internals: failed tests keep their snapshots.

syrupy counts a snapshot as unused when the test that owns it ran and did not assert it,
and ``--snapshot-update`` deletes unused snapshots. A test whose plugin fixture failed in
set-up (a dbt parse error), or that failed before its snapshot assertion, never reached
the assertion: deleting its snapshot would cost the user their committed baseline. syrupy
already keeps the snapshots of *skipped* tests, so such a test is recorded with syrupy as
skipped (for snapshot accounting only; pytest still reports it failed).

Internals used, checked by :func:`check_syrupy` and by tests/test_leaks.py:
``config._syrupy`` (the ``SnapshotSession``), ``SnapshotSession.ran_item(nodeid, outcome)``
and ``ItemStatus.SKIPPED``, whose snapshots ``SnapshotReport`` never counts as unused.
Nothing here imports pytest.
"""

from __future__ import annotations

from typing import Any

# syrupy versions this shim was read against and is tested with (lowest, first excluded).
SYRUPY_VERSIONS = ((7, 0), (8, 0))
SHIM = "pytest_dbt_assets.syrupy_compat"


def syrupy_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("syrupy").split(".")[:2] if part.isdigit())


def check_syrupy() -> str | None:
    """None when the installed syrupy has what the shim relies on, else why not."""
    low, high = SYRUPY_VERSIONS
    found = syrupy_version()
    if not low <= found < high:
        supported = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        return f"syrupy {'.'.join(map(str, found))} is outside the versions {SHIM} supports ({supported})"
    try:
        from syrupy.report import SnapshotReport
        from syrupy.session import ItemStatus, SnapshotSession
    except ImportError as error:
        return f"{SHIM}: syrupy no longer has {error.name}"
    if not callable(getattr(SnapshotSession, "ran_item", None)):
        return f"{SHIM}: syrupy's SnapshotSession has no ran_item()"
    if getattr(ItemStatus, "SKIPPED", None) is None or ItemStatus.SKIPPED.value != "skipped":
        return f"{SHIM}: syrupy's ItemStatus has no SKIPPED = 'skipped'"
    if not callable(getattr(SnapshotReport, "_skipped_items_match_name", None)):
        return f"{SHIM}: syrupy's SnapshotReport no longer keeps the snapshots of skipped tests"
    return None


class SnapshotKeeper:
    """Records failed tests that use the plugin's fixtures as skipped in syrupy's session.

    ``protect(nodeids)`` at collection names the tests concerned; ``failed(nodeid)`` runs
    after syrupy has recorded a failed set-up or call report. Does nothing when
    :func:`check_syrupy` finds a syrupy it does not know (the plugin warns once).
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.nodeids: set[str] = set()
        self.problem = check_syrupy()

    def protect(self, nodeids: set[str]) -> None:
        self.nodeids |= nodeids

    def failed(self, nodeid: str) -> None:
        if self.problem is not None or nodeid not in self.nodeids:
            return
        session = getattr(self.config, "_syrupy", None)
        if session is not None:
            session.ran_item(nodeid, "skipped")
