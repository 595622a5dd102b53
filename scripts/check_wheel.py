"""Check a built wheel ships what the plugin needs at run time: every module of the package
and of its subpackages (the dbt worker runs as ``python -m pytest_dbt_assets.dbt.server``,
its ``dbt`` executable runs ``pytest_dbt_assets/dbt/client.py`` by path), ``py.typed``, the
``pytest11`` entry point and the ``Framework :: Pytest`` classifier.

Usage: ``python scripts/check_wheel.py dist/pytest_dbt_assets-*.whl``
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PACKAGE = "pytest_dbt_assets"
ROOT = Path(__file__).resolve().parent.parent


def problems_of(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next((name for name in names if name.endswith(".dist-info/METADATA")), None)
        entry_points_name = next((name for name in names if name.endswith(".dist-info/entry_points.txt")), None)
        metadata = archive.read(metadata_name).decode() if metadata_name else ""
        entry_points = archive.read(entry_points_name).decode() if entry_points_name else ""
    # Every module in the source tree (pyproject lists the packages one by one: a new
    # subpackage it forgets is caught here), and the files run by path or named in full.
    expected = {path.relative_to(ROOT).as_posix() for path in (ROOT / PACKAGE).rglob("*.py")}
    expected |= {
        f"{PACKAGE}/py.typed",
        f"{PACKAGE}/dbt/__init__.py",
        f"{PACKAGE}/dbt/client.py",
        f"{PACKAGE}/dbt/server.py",
    }
    problems = [f"{wheel.name} lacks {name}" for name in sorted(expected - names)]
    if "Classifier: Framework :: Pytest" not in metadata:
        problems.append(f"{wheel.name}: METADATA has no 'Framework :: Pytest' classifier")
    if f"dbt_assets = {PACKAGE}.plugin" not in entry_points:
        problems.append(f"{wheel.name}: no pytest11 entry point 'dbt_assets = {PACKAGE}.plugin'")
    return problems


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python scripts/check_wheel.py WHEEL...", file=sys.stderr)
        return 2
    problems = [problem for path in paths for problem in problems_of(Path(path))]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"wheel contents checked: {', '.join(Path(path).name for path in paths)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
