"""syrupy: snapshot accounting, its command-line options, and text snapshot files.

syrupy is imported inside each function: the plugin imports compat at start-up.
"""

from __future__ import annotations

from typing import Any

from pytest_dbt_assets.compat import find_shim, missing_attributes, shim

# syrupy counts a snapshot as unused when the test that owns it ran and did not assert it, and
# ``--snapshot-update`` deletes unused snapshots. A test whose plugin fixture failed in set-up (a
# dbt parse error), or that failed before its snapshot assertion, never reached the assertion:
# deleting its snapshot would cost the user their committed baseline. syrupy already keeps the
# snapshots of *skipped* tests, so such a test is recorded with syrupy as skipped (for snapshot
# accounting only; pytest still reports it failed).


def record_as_skipped(config: object, nodeid: str) -> None:
    """Tell syrupy's session (``config._syrupy``) that ``nodeid`` was skipped, so that
    ``--snapshot-update`` keeps its snapshots. Does nothing without a syrupy session."""
    session = getattr(config, "_syrupy", None)
    if session is not None:
        session.ran_item(nodeid, "skipped")


@shim(
    "syrupy",
    "config._syrupy (its session; tests/test_leaks.py checks it end to end), SnapshotSession.ran_item, "
    "ItemStatus.SKIPPED, SnapshotReport._skipped_items_match_name",
)
def check_record_as_skipped() -> str | None:
    # Behaviour: a selected test recorded as skipped on a session of syrupy's own.
    try:
        from syrupy.report import SnapshotReport
        from syrupy.session import ItemStatus, SnapshotSession
    except ImportError as error:
        return f"syrupy no longer has {error.name}"
    if not callable(getattr(SnapshotReport, "_skipped_items_match_name", None)):
        return "syrupy's SnapshotReport no longer keeps the snapshots of skipped tests"
    nodeid = "test_shim.py::test_failed_in_setup"
    try:
        session = SnapshotSession(pytest_session=None)  # type: ignore[arg-type]
        session.ran_item(nodeid, "passed")  # what syrupy records, in a session that selected it
        selected = {nodeid: ItemStatus.NOT_RUN}
        session._selected_items = selected
        record_as_skipped(type("Config", (), {"_syrupy": session})(), nodeid)
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    recorded = selected.get(nodeid)
    return (
        None
        if recorded == ItemStatus.SKIPPED
        else f"a test recorded as skipped reads {getattr(recorded, 'name', recorded)}"
    )


def record_as_skipped_problem() -> str | None:
    """Why failed tests' snapshots cannot be protected on the installed syrupy, or None."""
    return find_shim("syrupy.record_as_skipped").problem()


def syrupy_option(option: object, dest: str) -> Any:
    """The value of syrupy's command-line option ``dest`` on pytest's ``config.option``, or
    None (syrupy not installed); one of :data:`SYRUPY_OPTIONS`."""
    assert dest in SYRUPY_OPTIONS, dest
    return getattr(option, dest, None)


def ignore_snapshot_files_ending(option: object, extension: str) -> None:
    """Make syrupy leave files ending in ``.extension`` beside the snapshots alone (never
    counted as unused, so never deleted by ``--snapshot-update``)."""
    if hasattr(option, "ignore_file_extensions"):
        option.ignore_file_extensions = [*(option.ignore_file_extensions or []), extension]  # type: ignore[attr-defined]


def text_write_mode() -> Any:
    """The ``_write_mode`` value that makes a ``SingleFileSnapshotExtension`` write text files
    (syrupy's README shows the private class attribute as the way to do it)."""
    from syrupy.extensions.single_file import WriteMode

    return WriteMode.TEXT


@shim("syrupy", "SingleFileSnapshotExtension._write_mode, WriteMode.TEXT")
def check_text_write_mode() -> str | None:
    try:
        from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
    except ImportError as error:
        return f"syrupy.extensions.single_file has no {error.name}"
    return missing_attributes(SingleFileSnapshotExtension, "_write_mode") or missing_attributes(WriteMode, "TEXT")


# syrupy's `dest` names for its options (``--snapshot-update``, ``--snapshot-dirname``, ...).
SYRUPY_OPTIONS = ("update_snapshots", "snapshot_dirname", "ignore_file_extensions")


def _parsed_options(args: list[str]) -> Any:
    """``args`` parsed as pytest parses them with syrupy's options added: a namespace of dests."""
    import pytest
    import syrupy

    parser = pytest.Parser(_ispytest=True)
    syrupy.pytest_addoption(parser)
    return parser.parse_known_args(args)


@shim("syrupy", "the dests update_snapshots, snapshot_dirname, ignore_file_extensions of syrupy's options")
def check_syrupy_option() -> str | None:
    # Behaviour: syrupy's own options, parsed from a command line.
    try:
        option = _parsed_options(["--snapshot-update", "--snapshot-dirname", "snaps"])
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    missing = [dest for dest in SYRUPY_OPTIONS if not hasattr(option, dest)]
    if missing:
        return f"syrupy's options have no dest {', '.join(missing)}"
    if syrupy_option(option, "update_snapshots") is not True or syrupy_option(option, "snapshot_dirname") != "snaps":
        return "--snapshot-update and --snapshot-dirname are not read into update_snapshots and snapshot_dirname"
    return None


@shim("syrupy", "config.option.ignore_file_extensions (a list of extensions)")
def check_ignore_snapshot_files_ending() -> str | None:
    try:
        option = _parsed_options(["--snapshot-ignore-file-extensions", "txt"])
        ignore_snapshot_files_ending(option, "md")
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    found = getattr(option, "ignore_file_extensions", None)
    return None if found == ["txt", "md"] else f"ignore_file_extensions reads {found!r}, not ['txt', 'md']"
