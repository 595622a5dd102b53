"""Write a synthetic dagster-dbt user repo with N dbt models, for benchmarks.

    python benchmarks/generate_project.py 100 /tmp/bench_repo

The repo looks like a real one, only smaller in data: seeds (about N/20, 20 rows each),
staging views 1:1 over them, intermediate tables joining 2-3 upstream models, marts tables
with unique/not_null tests; a profiles.yml whose only target is the user's "prod" DuckDB
file (which no benchmark may touch); a Dagster package loading the project with
``@dbt_assets``; and a pytest suite using the plugin. The same N always gives the same repo.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

PROFILE = "bench"
DBT_DIR = "bench_dbt"
DAGSTER_PACKAGE = "bench_dagster"
PROD_DUCKDB = "prod.duckdb"
SEED_ROWS = 20
BENCH_MART = "mart_000"
BENCH_SELECT = f"+{BENCH_MART}"

DEFINITIONS_PY = """\
from pathlib import Path

from dagster import AssetExecutionContext, Definitions
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

bench_project = DbtProject(project_dir=Path(__file__).resolve().parent.parent / "{dbt_dir}")
bench_project.prepare_if_dev()


@dbt_assets(manifest=bench_project.manifest_path, project=bench_project)
def bench_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


defs = Definitions(assets=[bench_dbt_assets], resources={{"dbt": DbtCliResource(project_dir=bench_project)}})
"""

TEST_GRAPH_PY = """\
def test_graph(dbt_asset_graph):
    assert "{mart_key}" in dbt_asset_graph.keys
    assert dbt_asset_graph.upstream("{mart_key}")
"""

TEST_MATERIALIZE_PY = """\
def test_materialize_mart(dbt_assets_materialize):
    result = dbt_assets_materialize(dbt_select="{select}")
    assert result.success, result.failures
    assert "{mart_key}" in result.materialized


def test_materialize_all(dbt_assets_materialize):
    result = dbt_assets_materialize()
    assert result.success, result.failures


def test_materialize_mart_again(dbt_assets_materialize):
    result = dbt_assets_materialize(dbt_select="{select}")
    assert result.success, result.failures
"""

PYPROJECT_TOML = f'''\
[tool.pytest.ini_options]
pythonpath = ["."]
dbt_assets_project_dir = "{DBT_DIR}"
dbt_assets_definitions = "{DAGSTER_PACKAGE}.definitions:defs"
'''

DBT_PROJECT_YML = f"""\
name: {PROFILE}
version: "1.0.0"
profile: {PROFILE}
models:
  {PROFILE}:
    staging:
      +materialized: view
    intermediate:
      +materialized: table
    marts:
      +materialized: table
"""

PROFILES_YML = f"""\
# The user's production warehouse. Benchmarks must never create {PROD_DUCKDB}.
{PROFILE}:
  target: prod
  outputs:
    prod:
      type: duckdb
      path: {PROD_DUCKDB}
      threads: 4
"""


@dataclass(frozen=True)
class Layers:
    """Model names per layer, and each model's parents."""

    seeds: list[str]
    staging: list[str]
    intermediate: list[str]
    marts: list[str]
    parents: dict[str, list[str]]

    @property
    def models(self) -> list[str]:
        return [*self.staging, *self.intermediate, *self.marts]


def plan_layers(n_models: int) -> Layers:
    """A deterministic layered DAG of ``n_models`` models (seeds not counted)."""
    if n_models < 3:
        raise ValueError("need at least 3 models (staging, intermediate, mart)")
    rng = random.Random(n_models)
    n_seeds = max(1, round(n_models / 20))
    n_marts = max(1, (n_models - n_seeds) // 4)
    n_intermediate = n_models - n_seeds - n_marts
    seeds = [f"raw_{i:03d}" for i in range(n_seeds)]
    staging = [f"stg_{i:03d}" for i in range(n_seeds)]
    parents: dict[str, list[str]] = {stg: [seed] for stg, seed in zip(staging, seeds)}

    intermediate: list[str] = []
    for i in range(n_intermediate):
        name = f"int_{i:03d}"
        # Recent models weigh more, so chains get deep the way real projects do.
        pool = [*staging, *intermediate[-8:]]
        parents[name] = sorted(rng.sample(pool, min(rng.choice((2, 3)), len(pool))))
        intermediate.append(name)
    marts = [f"mart_{i:03d}" for i in range(n_marts)]
    for name in marts:
        pool = intermediate or staging
        parents[name] = sorted(rng.sample(pool, min(rng.choice((2, 3)), len(pool))))
    return Layers(seeds, staging, intermediate, marts, parents)


def seed_csv(index: int) -> str:
    categories = ("a", "b", "c", "d")
    rows = [f"{i},{categories[(i + index) % 4]},{(i * 7 + index) % 100}" for i in range(1, SEED_ROWS + 1)]
    return "\n".join(["id,category,amount", *rows]) + "\n"


def model_sql(parents: list[str]) -> str:
    """Join the parents on ``id``, keeping the shared ``id, category, amount`` columns."""
    if len(parents) == 1:
        return f"select id, category, amount from {{{{ ref('{parents[0]}') }}}}\n"
    aliases = [f"p{i}" for i in range(len(parents))]
    amount = " + ".join(f"{alias}.amount" for alias in aliases)
    lines = [f"select p0.id, p0.category, {amount} as amount", f"from {{{{ ref('{parents[0]}') }}}} as p0"]
    for parent, alias in zip(parents[1:], aliases[1:]):
        lines.append(f"join {{{{ ref('{parent}') }}}} as {alias} on {alias}.id = p0.id")
    return "\n".join(lines) + "\n"


def marts_yml(marts: list[str]) -> str:
    lines = ["models:"]
    for name in marts:
        lines += [f"  - name: {name}", "    columns:", "      - name: id", "        data_tests: [unique, not_null]"]
    return "\n".join(lines) + "\n"


def write_tests(repo: Path, select: str, mart_key: str) -> None:
    """The benchmark's pytest suite: a graph test, then ``select`` (one mart and its upstream,
    in dbt syntax), then every asset, then ``select`` again (a typical later test: the worker
    has long finished parsing)."""
    tests = repo / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_graph.py").write_text(TEST_GRAPH_PY.format(mart_key=mart_key))
    (tests / "test_materialize.py").write_text(TEST_MATERIALIZE_PY.format(select=select, mart_key=mart_key))


def generate(n_models: int, out_dir: Path) -> Layers:
    """Write the repo into ``out_dir`` (created; must not exist yet) and return its plan."""
    layers = plan_layers(n_models)
    files: dict[str, str] = {
        "pyproject.toml": PYPROJECT_TOML,
        f"{DBT_DIR}/dbt_project.yml": DBT_PROJECT_YML,
        f"{DBT_DIR}/profiles.yml": PROFILES_YML,
        f"{DBT_DIR}/models/marts/_marts.yml": marts_yml(layers.marts),
        f"{DAGSTER_PACKAGE}/__init__.py": "",
        f"{DAGSTER_PACKAGE}/definitions.py": DEFINITIONS_PY.format(dbt_dir=DBT_DIR),
    }
    for index, seed in enumerate(layers.seeds):
        files[f"{DBT_DIR}/seeds/{seed}.csv"] = seed_csv(index)
    for layer, names in (("staging", layers.staging), ("intermediate", layers.intermediate), ("marts", layers.marts)):
        for name in names:
            files[f"{DBT_DIR}/models/{layer}/{name}.sql"] = model_sql(layers.parents[name])
    out_dir.mkdir(parents=True)
    for relative, content in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    write_tests(out_dir, BENCH_SELECT, BENCH_MART)
    return layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_models", type=int, help="number of dbt models (seeds not counted)")
    parser.add_argument("out_dir", type=Path, help="folder to create")
    args = parser.parse_args()
    layers = generate(args.n_models, args.out_dir)
    print(
        f"{args.out_dir}: {len(layers.seeds)} seeds, {len(layers.staging)} staging, "
        f"{len(layers.intermediate)} intermediate, {len(layers.marts)} marts"
    )


if __name__ == "__main__":
    main()
