"""Why a user module did not import, in words that point at the cause: the user's own line,
the environment (no ``dbt`` for dagster-dbt's resource), or the manifest the plugin could not
write. :mod:`definitions` uses it when its import fails, and the session
(``DbtAssetsSession.explain_import_failure``) for ``plugin.py``'s hooks, when a conftest or test
module failed to import before any fixture ran.

Nothing here imports Dagster or dbt: pydantic's ``ValidationError`` (a Dagster resource's
fields) is recognised by its name and its ``errors()``.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path


def describe_import_failure(exc: BaseException, module_name: str, spec: str, search_path: Path) -> str:
    """What went wrong importing the user's module, where, and what to do about it."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing is not None and (module_name == missing or module_name.startswith(missing + ".")):
        return (
            f"Could not import {module_name!r} (dbt_assets_definitions = {spec!r}): no module "
            f"named {missing!r} is importable from the rootdir ({search_path}).\n"
            'Check the module path; add `pythonpath = ["."]` (or your source folder, e.g. '
            '"src") to [tool.pytest.ini_options] if your package lives there.'
        )
    environment = environment_problem(exc)
    if environment is not None:
        fix = environment
    elif missing is not None:
        fix = (
            f"This is a problem of the environment, not of your code: install {missing!r} in the "
            f"environment that runs pytest ({sys.executable})."
        )
    else:
        fix = "Fix the error in your code: the plugin imports the module the way Dagster would."
    return (
        f"Importing {module_name!r} (dbt_assets_definitions = {spec!r}) raised an exception:\n"
        f"{exception_summary(exc, search_path)}\n{fix}"
    )


def explain_import_failure(error_text: str, manifest_problem: str | None) -> str | None:
    """The plugin's words for a user module that failed to import (``error_text``: the
    exception, or pytest's report of it) because of the manifest the plugin could not write
    (``manifest_problem``, see ``Workspace.manifest_problem``), or of the environment (no
    dbt); None for any other error."""

    def lines_with(needle: str) -> list[str]:
        # pytest's "E   " prefix and pydantic's "Value error, " ... " [type=...]" wrapping removed
        found = [re.sub(r"^E\s+", "", line.strip()) for line in error_text.splitlines() if needle in line]
        return [re.sub(r"\s*\[type=[^\]]*\]$", "", line).removeprefix("Value error, ") for line in found]

    if manifest_problem is not None and lines_with("manifest.json"):
        return f"{lines_with('manifest.json')[-1]}\n{manifest_problem}"
    if lines_with("not found on PATH"):
        fix = environment_problem(RuntimeError(lines_with("not found on PATH")[-1]))
        if fix is not None:
            return f"{lines_with('not found on PATH')[-1]}\n{fix}"
    return None


def environment_problem(exc: BaseException) -> str | None:
    """The fix, when ``exc`` comes from the environment running pytest rather than from the
    user's code (dbt not found by dagster-dbt's ``DbtCliResource``); None otherwise."""
    if "dbt_executable" in _validation_fields(exc) or "executable" in str(exc) and "not found on PATH" in str(exc):
        return (
            "This is a problem of the environment, not of your code: no `dbt` executable is on PATH "
            f"for this pytest process ({sys.executable}), and dagster-dbt's DbtCliResource checks for "
            "one when it is created. Install dbt-core and your adapter in this environment, run pytest "
            "from the virtualenv that has them (the plugin finds a `dbt` installed beside this Python "
            "even when the virtualenv is not activated), or set `dbt_executable` on the resource."
        )
    return None


def _validation_fields(exc: BaseException) -> set[str]:
    """Field names of a pydantic ``ValidationError`` (Dagster resources are pydantic models)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors) or type(exc).__name__ != "ValidationError":
        return set()
    try:
        return {str(part) for error in errors() for part in error.get("loc", ())}
    except Exception:  # noqa: BLE001 - only a hint; never hide the original error
        return set()


def _exception_text(exc: BaseException) -> str:
    """The whole message of ``exc``; for pydantic's ``ValidationError`` (a Dagster resource's
    fields) each field with its full message, without pydantic's type and link trailers."""
    if _validation_fields(exc):
        lines = [str(exc).splitlines()[0]] if str(exc) else []
        for error in exc.errors():  # type: ignore[attr-defined]
            where = ".".join(str(part) for part in error.get("loc", ())) or "value"
            text = str(error.get("msg", "")).removeprefix("Value error, ")
            lines.append(f"{where}: {text}")
        return "\n".join(lines)
    return str(exc)


def exception_summary(exc: BaseException, search_path: Path | None = None) -> str:
    """The exception and the line of user code that raised it (not dagster's, not ours).

    The message is shown whole: a cut one can stop mid-sentence before the part that says
    what to do."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"  {display_path(exc.filename, search_path)}:{exc.lineno}\n"
        if exc.text and exc.text.strip():
            where += f"    {exc.text.strip()}\n"
        message = exc.msg
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_ours(f.filename)]
        frames = [f for f in frames if not _is_library_file(f.filename)] or frames
        if frames:
            frame = frames[-1]
            where = f"  {display_path(frame.filename, search_path)}:{frame.lineno}\n"
            if frame.line:
                where += f"    {frame.line.strip()}\n"
        message = _exception_text(exc)
    message = message.strip().replace("\n", "\n    ")
    return f"{where}  {type(exc).__name__}: {message}"


def _is_ours(filename: str) -> bool:
    """Frames of the import machinery and of this plugin: never where the user's error is."""
    path = Path(filename)
    return filename.startswith("<") or "importlib" in path.parts or path.parent == Path(__file__).parent


def _is_library_file(filename: str) -> bool:
    parts = Path(filename).parts
    return "site-packages" in parts or "dist-packages" in parts


def display_path(filename: str | None, search_path: Path | None) -> str:
    if not filename:
        return "?"
    if search_path is None:
        return filename
    try:
        return str(Path(filename).resolve().relative_to(search_path.resolve()))
    except ValueError:
        return filename
