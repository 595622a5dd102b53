"""Baseline (g): what dagster-dbt alone needs before any test can look at the graph.

Import dagster and dagster_dbt, import the user's definitions (which build `@dbt_assets`
from the parsed `target/manifest.json`), and resolve the asset graph. The runner times the
whole process, Python start-up included, to compare with a graph-only pytest session.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from _common import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--definitions", required=True, help="module:attr of the Definitions")
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo))
    import dagster  # noqa: F401
    import dagster_dbt  # noqa: F401

    module, _, attr = args.definitions.partition(":")
    defs = getattr(importlib.import_module(module), attr)
    report({"assets": len(defs.resolve_asset_graph().get_all_asset_keys())})


if __name__ == "__main__":
    main()
