"""The documentation runs: every fenced block of README.md, docs/ and CONTRIBUTING.md says what
it is, every snippet is written into its scenario repo and run with nested pytest, and every
public option, fixture, marker keyword and result attribute is documented.

The conventions (the HTML comment before each block) are in CONTRIBUTING.md, Documentation.
A scenario's nested sessions are its `run:` blocks' `pytest` lines, in the order of the
documents, or one plain `pytest`; each must pass with no warning in its summary, and one of
them must run and pass every test function its snippets define.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import re
import shlex
from pathlib import Path

import pytest

from tests.docs_repos import DOCS, ROOT, SCENARIOS, Block, all_blocks, documentation_text

pytestmark = pytest.mark.e2e


def test_every_block_says_what_it_is() -> None:
    problems = []
    for block in all_blocks():
        if block.kind is None:
            problems.append(
                f"{block.where}: no marker before the block (<!-- file: PATH, repo: REPO -->, "
                "<!-- append: PATH, repo: REPO -->, <!-- run: REPO --> or <!-- not run: REASON -->)"
            )
        elif block.repo is not None and block.repo not in SCENARIOS:
            problems.append(f"{block.where}: unknown repo {block.repo!r} (one of {', '.join(SCENARIOS)})")
        elif block.kind == "run" and not _commands(block):
            problems.append(f"{block.where}: a run block with no `pytest` line")
    assert not problems, "\n".join(problems)


def test_the_docs_have_snippets_of_every_scenario() -> None:
    """A scenario whose blocks were all dropped (or misspelt) would pass by running nothing."""
    runnable = {block.repo for block in all_blocks() if block.kind in ("file", "append")}
    assert runnable == set(SCENARIOS)


def test_make_test_is_the_readmes_test_command() -> None:
    """CI (.ci/run) runs `make test`: the README must keep saying so, as a command."""
    readme = next(block for doc in DOCS[:1] for block in _blocks_of(doc) if "make test" in block.text)
    assert re.search(r"^make test\b", readme.text, re.MULTILINE)
    assert re.search(r"^make demo\b", readme.text, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_documented_materialize_signature_is_the_fixtures() -> None:
    fixtures_md = (ROOT / "docs" / "fixtures.md").read_text(encoding="utf-8")
    documented = re.search(
        r"^dbt_assets_materialize\((?P<params>.*?)\) -> Materialization$", fixtures_md, re.MULTILINE | re.DOTALL
    )
    assert documented is not None, "docs/fixtures.md lost the signature of dbt_assets_materialize"
    function = ast.parse(f"def f({documented['params']}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    documented_params = [(arg.arg, ast.literal_eval(default)) for arg, default in zip(args.args, args.defaults)] + [
        (arg.arg, ast.literal_eval(default)) for arg, default in zip(args.kwonlyargs, args.kw_defaults) if default
    ]
    # Imported here, not at collection: it imports Dagster, which in-process nested runs of
    # other tests in this worker may have loaded and dropped (two copies clash in serdes).
    from pytest_dbt_assets import MaterializeAssets

    real = inspect.signature(MaterializeAssets.__call__).parameters.values()
    assert documented_params == [(param.name, param.default) for param in real if param.name != "self"]


def test_every_public_name_is_documented(pytester: pytest.Pytester) -> None:
    """Options and ini keys from `pytest --help`, fixtures from `pytest --fixtures`, marker
    keywords from `pytest --markers`, and the attributes of the results."""
    from pytest_dbt_assets import AssetGraph, Materialization  # see above: not at collection

    text = documentation_text()
    help_text = pytester.runpytest("--help").stdout.str()
    fixtures_text = pytester.runpytest("--fixtures").stdout.str()
    markers_text = pytester.runpytest("--markers").stdout.str()
    flags = set(re.findall(r"(--dbt-assets-[\w-]+)", help_text))
    ini_keys = set(re.findall(r"^\s+(dbt_assets_\w+)\s*\(", help_text, re.MULTILINE))
    fixtures = set(re.findall(r"^(dbt_asset\w*)\b", fixtures_text, re.MULTILINE))
    marker = re.search(r"@pytest\.mark\.dbt_assets\((?P<keywords>[^)]*)\)", markers_text)
    assert flags and ini_keys and fixtures and marker, "pytest's own listings changed shape"
    keywords = set(re.findall(r"(\w+)=", marker["keywords"]))
    assert "dbt_select" in keywords and "dbt_assets_materialize" in fixtures

    def mentioned(name: str) -> bool:
        return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None

    missing = sorted(name for name in flags | ini_keys | fixtures if not mentioned(name))
    reference = (ROOT / "docs" / "fixtures.md").read_text(encoding="utf-8")
    missing += sorted(f"marker {name}=" for name in keywords if not re.search(rf"\b{name}=", reference))
    for result_type in (Materialization, AssetGraph):
        names = [field.name for field in dataclasses.fields(result_type)] + [
            name for name, value in vars(result_type).items() if callable(value) and not name.startswith("_")
        ]
        missing += sorted(
            f"{result_type.__name__}.{name}" for name in names if not re.search(rf"`{name}[`(]", reference)
        )
    assert missing == []


# --- the scenarios ---------------------------------------------------------------------------


def test_scaffold_quick_start(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Quick start on what `dagster-dbt project scaffold` makes, as it makes it:
    `pytest --snapshot-update`, then `pytest`, from the Dagster project."""
    runs = _run_scenario("scaffold", pytester, monkeypatch)
    assert [run.args for run in runs] == [["--snapshot-update"], []]
    snapshots = pytester.path / "my_dbt/my_dagster/tests/__snapshots__/test_assets"
    assert sorted(path.name for path in snapshots.iterdir()) == ["test_asset_graph.yaml", "test_customers.yaml"]


def test_components_quick_start(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run_scenario("components", pytester, monkeypatch)


def test_snowflake_quick_start(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Looked up, not imported: importing Dagster's modules in this process during a test, after
    # in-process nested runs dropped theirs, registers its serdes classes twice.
    if not all(importlib.util.find_spec(name) for name in ("fakesnow", "dagster_snowflake")):
        pytest.skip("the snowflake extra and dagster-snowflake are not installed")
    _run_scenario("snowflake", pytester, monkeypatch)


def test_reference_examples(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/'s examples on a copy of example_project."""
    _run_scenario("example", pytester, monkeypatch)


def test_several_projects(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run_scenario("several", pytester, monkeypatch)


@dataclasses.dataclass
class _Run:
    block: str
    cwd: Path
    args: list[str]
    outcomes: dict[str, int]


def _run_scenario(repo: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[_Run]:
    """Write scenario ``repo`` and its snippets under ``pytester.path``, run its commands, and
    check that each passed and that one ran every test function the snippets define."""
    root = pytester.path
    SCENARIOS[repo](root)
    blocks = [block for block in all_blocks() if block.repo == repo]
    written: set[str] = set()
    tests = 0
    for block in blocks:
        if block.kind not in ("file", "append"):
            continue
        assert block.path is not None
        path = root / block.path
        if block.kind == "append":
            assert path.is_file(), f"{block.where} adds to {block.path}, which the {repo} scenario does not have"
        if block.kind == "append" or block.path in written:
            path.write_text(path.read_text(encoding="utf-8") + "\n\n" + block.text, encoding="utf-8")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
        written.add(block.path)
        if path.name.startswith("test_") and path.suffix == ".py":
            tests += len(re.findall(r"^def test_", block.text, re.MULTILINE))
    assert tests, f"no snippet of the {repo} scenario defines a test"

    commands: list[tuple[Block | None, Path, list[str]]] = [
        (block, cwd, args) for block in blocks if block.kind == "run" for cwd, args in _commands(block)
    ]
    if not commands:
        commands = [(None, Path("."), [])]
    runs = []
    for run_block, cwd, args in commands:
        monkeypatch.chdir(root / cwd)
        result = pytester.runpytest(*args)
        where = run_block.where if run_block else f"plain `pytest` of the {repo} scenario"
        outcomes = result.parseoutcomes()
        assert result.ret == 0, f"{where}: pytest {shlex.join(args)} failed:\n{result.stdout.str()}"
        # The user's summary has no warning from the plugin's own drive of Dagster and dbt.
        assert "warnings" not in outcomes, f"{where}: pytest {shlex.join(args)} warned:\n{result.stdout.str()}"
        runs.append(_Run(where, cwd, args, outcomes))
    assert any(run.outcomes.get("passed") == tests for run in runs), (
        f"the snippets of the {repo} scenario define {tests} tests; the runs passed {[run.outcomes for run in runs]}"
    )
    return runs


def _commands(block: Block) -> list[tuple[Path, list[str]]]:
    """The `pytest` lines of a run block with the folder each runs in (after its `cd` lines)."""
    cwd = Path(".")
    commands = []
    for line in block.text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "cd":
            cwd = cwd / words[1]
        elif words[0] == "pytest":
            commands.append((cwd, words[1:]))
        else:
            raise AssertionError(f"{block.where}: a run block runs only `cd` and `pytest` lines, not {line!r}")
    return commands


def _blocks_of(doc: Path) -> list[Block]:
    return [block for block in all_blocks() if block.doc == str(doc.relative_to(ROOT))]


def test_links_between_the_documents_resolve() -> None:
    """Each relative link names a file of the repository and, after `#`, one of its headings."""

    def anchors(path: Path) -> set[str]:
        headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}

    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"\w+://", target):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists() or (anchor and anchor not in anchors(path)):
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "\n".join(broken)
