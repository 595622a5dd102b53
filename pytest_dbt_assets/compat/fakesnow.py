"""fakesnow, the Snowflake emulator (``warehouse/snowflake.py``): its instance, its stage folder,
and two patches of its cursor.

fakesnow (the snowflake extra) is imported inside each function: it may not be installed, and
the plugin imports compat at start-up.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from pytest_dbt_assets.compat import installed_version, lacks, shim


def fakesnow_instance(folder: Path, nop_regexes: list[str] | None = None) -> Any:
    """fakesnow's emulator on the DuckDB files of ``folder`` (``fakesnow.patch`` builds the
    same, but holds it until the patch ends and patches by name), answering the statements
    ``nop_regexes`` match with success, unrun; close it with :func:`close_fakesnow`."""
    from fakesnow.instance import FakeSnow

    return FakeSnow(
        db_path=folder, create_database_on_connect=True, create_schema_on_connect=True, nop_regexes=nop_regexes
    )


def close_fakesnow(instance: Any) -> None:
    """Release the DuckDB files ``instance`` attached."""
    instance.duck_conn.close()


def is_closed_fakesnow_connection(connection: Any) -> bool:
    return bool(connection._is_closed)


@shim("fakesnow", "fakesnow.instance.FakeSnow(db_path=...), its duck_conn and connect(), a connection's _is_closed")
def check_fakesnow_instance() -> str | None:
    if installed_version("fakesnow") is None:
        return None  # the snowflake extra is not installed: nothing uses it
    with tempfile.TemporaryDirectory() as folder:
        try:
            instance = fakesnow_instance(Path(folder))
            connection = instance.connect(database="DB", schema="S")
            connection.close()
            closed = is_closed_fakesnow_connection(connection)
            close_fakesnow(instance)
        except Exception as error:  # noqa: BLE001 - the check reports whatever broke
            return f"{type(error).__name__}: {error}"
        if not closed:
            return "a closed connection does not say so"
        return None if (Path(folder) / "DB.db").exists() else "no DB.db file made in the folder"


def fakesnow_stages_in(folder: Path) -> None:
    """Stage files (``PUT``) of this process go to ``folder``: fakesnow makes a folder for them
    in the system's temp folder when it is imported (``LOCAL_BUCKET_PATH``) and never removes
    it, one a process; that folder, still empty, is removed."""
    from fakesnow.transforms import stage

    made = stage.LOCAL_BUCKET_PATH
    if made == str(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    stage.LOCAL_BUCKET_PATH = str(folder)
    if Path(made).name.startswith("fakesnow_bucket_"):
        shutil.rmtree(made, ignore_errors=True)


@shim("fakesnow", "fakesnow.transforms.stage.LOCAL_BUCKET_PATH, read when a stage is used")
def check_fakesnow_stages_in() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    return lacks("fakesnow.transforms.stage", None, "LOCAL_BUCKET_PATH")


@contextmanager
def fakesnow_statement_rewrite(rewrite: Callable[[Any, Any], Any]) -> Iterator[None]:
    """Inside: each statement fakesnow parses goes through ``rewrite(expression, connection)``
    (sqlglot's expression, fakesnow's connection) before fakesnow's own translation."""
    from fakesnow.cursor import FakeSnowflakeCursor

    explode = FakeSnowflakeCursor._transform_explode

    def rewritten(self: Any, expression: Any) -> Any:
        return explode(self, rewrite(expression, self._conn))

    with mock.patch.object(FakeSnowflakeCursor, "_transform_explode", rewritten):
        yield


@contextmanager
def fakesnow_error_wording(reword: Callable[[str], str]) -> Iterator[None]:
    """Inside: the message of each ``ProgrammingError`` a fakesnow cursor raises goes through
    ``reword`` (same errno and sqlstate; the original error is its cause)."""
    from fakesnow.cursor import FakeSnowflakeCursor
    from snowflake.connector.errors import ProgrammingError

    execute = FakeSnowflakeCursor.execute

    def reworded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except ProgrammingError as error:
            message = reword(error.msg or "")
            if message == error.msg:
                raise
            raise ProgrammingError(msg=message, errno=error.errno, sqlstate=error.sqlstate) from error

    with mock.patch.object(FakeSnowflakeCursor, "execute", reworded):
        yield


@shim("fakesnow", "fakesnow.cursor.FakeSnowflakeCursor.execute raising snowflake's ProgrammingError")
def check_fakesnow_error_wording() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    from fakesnow.instance import FakeSnow

    instance = FakeSnow()  # in memory
    try:
        with fakesnow_error_wording(lambda text: "reworded: " + text):
            instance.connect().cursor().execute("select * from no_such_table")
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        if not str(error).count("reworded: "):
            return f"the error was not reworded: {type(error).__name__}: {error}"
        return None
    finally:
        close_fakesnow(instance)
    return "a query of a missing table raised nothing"


@shim("fakesnow", "fakesnow.cursor.FakeSnowflakeCursor._transform_explode(expression) and its _conn")
def check_fakesnow_statement_rewrite() -> str | None:
    if installed_version("fakesnow") is None:
        return None
    seen: list[Any] = []

    def record(expression: Any, connection: Any) -> Any:
        seen.append(connection)
        return expression

    from fakesnow.instance import FakeSnow

    instance = FakeSnow()  # in memory
    try:
        with fakesnow_statement_rewrite(record), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fakesnow's own, about Arrow copies
            connection = instance.connect()
            connection.cursor().execute("select 1")
    except Exception as error:  # noqa: BLE001 - the check reports whatever broke
        return f"{type(error).__name__}: {error}"
    finally:
        close_fakesnow(instance)
    return None if seen and seen[0] is connection else "the rewrite was not called with the statement's connection"
