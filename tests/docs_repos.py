"""The scenario repos that the snippets of README.md and docs/ run in (see tests/e2e/test_docs.py).

Each writer makes a repo as its user has it before adding the documented snippets: the
snippets are then written over it, so a snippet that needs a file the scenario does not make
fails the test, as it would fail the reader.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md"]

# What a user's checkout never holds, left out of the copies of example_project.
_NOT_IN_A_CHECKOUT = shutil.ignore_patterns("target", "__pycache__", "__snapshots__", "*.duckdb", ".pytest_cache")

# The comment before a fenced block: what the block is (see CONTRIBUTING.md, Documentation).
_MARKER = re.compile(
    r"<!--\s*(?:(?P<kind>file|append):\s*(?P<path>[^,]+?),\s*repo:\s*(?P<repo>[\w-]+)"
    r"|run:\s*(?P<run>[\w-]+)"
    r"|not run:\s*(?P<reason>\S.*?))\s*-->"
)
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a document, with what its marker says it is."""

    doc: str  # the document, relative to the repository
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    kind: str | None  # file, append, run, not run; None: no (valid) marker
    repo: str | None = None
    path: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def read_blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, with the marker on the closest non-blank line before it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        indent = len(fence["indent"])
        end = next(
            (n for n in range(index + 1, len(lines)) if lines[n].strip() == "```"),
            len(lines),
        )
        text = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        before = next((lines[n].strip() for n in range(index - 1, -1, -1) if lines[n].strip()), "")
        marker = _MARKER.fullmatch(before)
        name = str(doc.relative_to(ROOT))
        if marker is None:
            blocks.append(Block(name, index + 1, fence["lang"], text, None))
        elif marker["kind"]:
            blocks.append(
                Block(name, index + 1, fence["lang"], text, marker["kind"], marker["repo"], marker["path"].strip())
            )
        elif marker["run"]:
            blocks.append(Block(name, index + 1, fence["lang"], text, "run", marker["run"]))
        else:
            blocks.append(Block(name, index + 1, fence["lang"], text, "not run"))
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in read_blocks(doc)]


def documentation_text() -> str:
    return "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS)


# --- the scenario repos, as their users have them before the snippets ---------------------------


def scaffold_repo(root: Path) -> None:
    """A dbt project (example_project's jaffle shop) with `dagster-dbt project scaffold`'s
    Dagster project inside it, as the command makes it, at ``root/my_dbt``."""
    shutil.copytree(EXAMPLE / "jaffle_dbt", root / "my_dbt", ignore=_NOT_IN_A_CHECKOUT)
    scaffold = Path(sys.executable).parent / "dagster-dbt"
    subprocess.run(
        [str(scaffold), "project", "scaffold", "--project-name", "my_dagster"],
        cwd=root / "my_dbt",
        check=True,
        capture_output=True,
        timeout=600,  # a hang guard
    )


# What `create-dagster project my_project` writes before its [tool.dg] sections (the README shows those).
_DG_PYPROJECT = """
    [project]
    name = "my_project"
    version = "0.1.0"
    requires-python = ">=3.10,<3.14"
    dependencies = ["dagster", "dagster-dbt", "dbt-duckdb"]

    [build-system]
    requires = ["hatchling"]
    build-backend = "hatchling.build"
"""

# Its definitions module.
_DG_DEFINITIONS = """
    from pathlib import Path

    from dagster import definitions, load_from_defs_folder


    @definitions
    def defs():
        return load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def components_repo(root: Path) -> None:
    """What `create-dagster project my_project` makes, with a dbt project copied in."""
    shutil.copytree(EXAMPLE / "jaffle_dbt", root / "my_dbt", ignore=_NOT_IN_A_CHECKOUT)
    write_files(
        root,
        {
            "pyproject.toml": _DG_PYPROJECT,
            "src/my_project/__init__.py": "",
            "src/my_project/definitions.py": _DG_DEFINITIONS,
            "src/my_project/defs/__init__.py": "",
            "src/my_project/components/__init__.py": "",
        },
    )


def example_repo(root: Path) -> None:
    """example_project's `@dbt_assets` variant, without its tests."""
    for name in ("jaffle_dbt", "jaffle_dagster", "data"):
        shutil.copytree(EXAMPLE / name, root / name, ignore=_NOT_IN_A_CHECKOUT)


def snowflake_repo(root: Path) -> None:
    """example_project's Snowflake team's repo (its pyproject.toml configures the plugin), without its tests."""
    shutil.copytree(EXAMPLE / "jaffle_snowflake", root, ignore=_NOT_IN_A_CHECKOUT, dirs_exist_ok=True)
    shutil.rmtree(root / "tests")


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write ``relative path -> content`` (dedented) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


# Two dbt projects in one code location: finance reads shop's orders as a source.
_SEVERAL_FILES = {
    "dbt/shop/dbt_project.yml": """
        name: shop
        profile: shop
        models:
          shop:
            +materialized: table
    """,
    "dbt/shop/profiles.yml": """
        shop:
          target: prod
          outputs:
            prod:
              type: duckdb
              path: prod.duckdb
    """,
    "dbt/shop/seeds/raw_orders.csv": """
        id,customer_id,amount
        10,1,5
        11,1,7
        12,2,3
        13,3,9
    """,
    "dbt/shop/models/orders.sql": "select id as order_id, customer_id, amount from {{ ref('raw_orders') }}",
    "dbt/finance/dbt_project.yml": """
        name: finance
        profile: finance
        models:
          finance:
            +materialized: table
    """,
    "dbt/finance/profiles.yml": """
        finance:
          target: prod
          outputs:
            prod:
              type: duckdb
              path: prod.duckdb
    """,
    "dbt/finance/models/sources.yml": """
        version: 2
        sources:
          - name: shop
            schema: "{{ target.schema }}"
            tables:
              - name: orders
                meta:
                  dagster:
                    asset_key: ["orders"]
    """,
    "dbt/finance/models/revenue.sql": "select sum(amount)::integer as total from {{ source('shop', 'orders') }}",
    "warehouse/__init__.py": "",
    "warehouse/definitions.py": """
        from pathlib import Path

        import dagster as dg
        from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

        DBT = Path(__file__).parent.parent / "dbt"
        shop = DbtProject(project_dir=DBT / "shop")
        finance = DbtProject(project_dir=DBT / "finance")


        @dbt_assets(manifest=shop.manifest_path, project=shop)
        def shop_assets(context: dg.AssetExecutionContext, shop_dbt: DbtCliResource):
            yield from shop_dbt.cli(["build"], context=context).stream()


        @dbt_assets(manifest=finance.manifest_path, project=finance)
        def finance_assets(context: dg.AssetExecutionContext, finance_dbt: DbtCliResource):
            yield from finance_dbt.cli(["build"], context=context).stream()


        defs = dg.Definitions(
            assets=[shop_assets, finance_assets],
            resources={"shop_dbt": DbtCliResource(project_dir=shop), "finance_dbt": DbtCliResource(project_dir=finance)},
        )
    """,
}


def several_repo(root: Path) -> None:
    write_files(root, _SEVERAL_FILES)


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "scaffold": scaffold_repo,
    "components": components_repo,
    "example": example_repo,
    "snowflake": snowflake_repo,
    "several": several_repo,
}
