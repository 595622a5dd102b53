"""pytest: private attributes of pytest's own objects (here too, so that one package holds
every touch of another package's internals)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_dbt_assets.compat import shim

if TYPE_CHECKING:
    from pytest import TempPathFactory


def session_tmp_path_factory(config: object) -> TempPathFactory:
    """The session's ``tmp_path_factory``, reachable from a hook.

    pytest offers no public way: its tmpdir plugin keeps the factory on the config (a private
    attribute, which pytest-xdist reads too). The dbt worker's folder is made at collection, before
    any fixture runs, so this is the one place the plugin reads it.
    """
    return config._tmp_path_factory  # type: ignore[attr-defined,no-any-return]


@shim("pytest", "config._tmp_path_factory (set by _pytest.tmpdir)")
def check_session_tmp_path_factory() -> str | None:
    # Behaviour: pytest's tmpdir plugin configures a config of pytest's own (no plugins loaded).
    from _pytest import tmpdir
    from _pytest.config import get_config

    config = get_config([])
    try:
        config.option.basetemp = None
        tmpdir.pytest_configure(config)
        factory = session_tmp_path_factory(config)
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    finally:
        config._ensure_unconfigure()
    return None if isinstance(factory, tmpdir.TempPathFactory) else f"it holds {type(factory).__name__}"


def import_failure_cause(error: BaseException) -> BaseException:
    """The user's exception inside pytest's ``ConftestImportFailure`` (its ``cause``), or
    ``error`` itself."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


@shim("pytest", "_pytest.config.ConftestImportFailure.cause")
def check_import_failure_cause() -> str | None:
    # Behaviour: the failure pytest raises for a conftest.py that raised ``cause``.
    from _pytest.config import ConftestImportFailure

    cause = ValueError("the user's error")
    try:
        error = ConftestImportFailure(Path("conftest.py"), cause=cause)
    except Exception as exc:  # noqa: BLE001 - the check reports whatever broke
        return f"ConftestImportFailure(path, cause=...) fails: {type(exc).__name__}: {exc}"
    return None if import_failure_cause(error) is cause else "the user's exception is not its cause"
