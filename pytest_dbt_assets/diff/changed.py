"""Which tests a change touches (``--dbt-assets-changed-since``): what each test reached in its
last run, kept between runs, and the decision to run or deselect it, with its reason.

A test's reach is the asset keys its materializations selected, or "everything" when it asks
for a fixture that can see any asset (the graph, the definitions, the project). A test runs
when it has no record, failed last time, its file or a conftest.py above it changed, the
source data files changed, or its reach meets the assets the change touches. Pure data in
and out (the record is plain JSON in pytest's cache), so every rule is unit-testable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pytest_dbt_assets.diff.revision import git
from pytest_dbt_assets.errors import RevisionError
from pytest_dbt_assets.words import listed

RECORD_VERSION = 1
EVERYTHING_FIXTURES = (
    "dbt_asset_graph",
    "dbt_assets_defs",
    "dbt_assets_project",
    "dbt_assets_projects",
    "dbt_assets_dbt_executable",
)
"""Fixtures that let a test reach any asset: the graph (and its snapshot), the definitions, the
temporary project (any dbt command), dbt itself."""


@dataclass(frozen=True)
class Reach:
    """What one test reached in its last recorded run.

    ``keys``: the asset keys its materializations selected (sorted); ``everything``: the
    fixtures it asked for that reach any asset (sorted; empty: only ``keys``); ``failed``: it
    failed (it runs again until it passes).
    """

    keys: tuple[str, ...] = ()
    everything: tuple[str, ...] = ()
    failed: bool = False

    def to_plain(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "everything": list(self.everything), "failed": self.failed}

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> Reach:
        return cls(
            keys=tuple(sorted(str(key) for key in plain.get("keys") or ())),
            everything=tuple(sorted(str(name) for name in plain.get("everything") or ())),
            failed=bool(plain.get("failed", False)),
        )


def build_reach(
    selected: Iterable[str], asked: Iterable[str], closure: Iterable[str], *, failed: bool = False
) -> Reach:
    """A test's reach from the keys its materializations selected, the fixtures the test asks for
    itself (``asked``) and all the fixtures it uses (``closure``).

    A test that asks for an everything-fixture reaches everything. So does one that selected
    nothing while an everything-fixture is among those it uses: it may read the graph through a
    fixture of its own (a wrapper of ``dbt_asset_graph``), and running it is the safe side.
    """
    keys = tuple(sorted(set(selected)))
    everything = {name for name in asked if name in EVERYTHING_FIXTURES}
    if not keys and not everything:
        everything = {name for name in closure if name in EVERYTHING_FIXTURES}
    return Reach(keys=keys, everything=tuple(sorted(everything)), failed=failed)


def load_records(raw: Any) -> dict[str, Reach]:
    """Node id -> reach from the cache's value; anything it cannot read counts as no record."""
    if not isinstance(raw, Mapping) or raw.get("version") != RECORD_VERSION:
        return {}
    tests = raw.get("tests")
    if not isinstance(tests, Mapping):
        return {}
    return {str(nodeid): Reach.from_plain(plain) for nodeid, plain in tests.items() if isinstance(plain, Mapping)}


def merge_records(old: Mapping[str, Reach], ran: Mapping[str, Reach]) -> dict[str, Any]:
    """The cache's new value: each test that ran replaces its own record; the others keep theirs."""
    merged = {**old, **ran}
    return {"version": RECORD_VERSION, "tests": {nodeid: merged[nodeid].to_plain() for nodeid in sorted(merged)}}


@dataclass(frozen=True)
class Change:
    """What changed since a base revision, as test selection needs it (plain enough to travel
    to xdist workers: see :meth:`to_plain`).

    ``touched``: the impact's touched keys (added, modified, downstream, removed);
    ``added_parents``: each added key -> its parents, so a test that reached a parent runs too
    (its selection, ``stg_orders+``, may now take the new asset in); ``graph_changed``: the
    impact is not empty (a test that reaches everything runs); ``files``: repository-relative
    paths changed since the base (git diff and untracked files); ``data_changed``: a source data
    file (``dbt_assets_data_dir``) is among them.
    """

    base: str
    touched: frozenset[str] = frozenset()
    added_parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    graph_changed: bool = False
    files: frozenset[str] = frozenset()
    data_changed: bool = False

    def to_plain(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "touched": sorted(self.touched),
            "added_parents": {key: list(parents) for key, parents in sorted(self.added_parents.items())},
            "graph_changed": self.graph_changed,
            "files": sorted(self.files),
            "data_changed": self.data_changed,
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> Change:
        return cls(
            base=plain["base"],
            touched=frozenset(plain["touched"]),
            added_parents={key: tuple(parents) for key, parents in plain["added_parents"].items()},
            graph_changed=plain["graph_changed"],
            files=frozenset(plain["files"]),
            data_changed=plain["data_changed"],
        )


def build_change(
    base: str,
    *,
    touched: Iterable[str],
    added: Iterable[str],
    parents: Mapping[str, Sequence[str]],
    graph_changed: bool,
    files: Iterable[str],
    data_dir: str | None = None,
) -> Change:
    """A :class:`Change` from an impact's parts and the changed files; ``data_dir`` is the
    source data folder relative to the repository (None: outside it, or none)."""
    files = frozenset(files)
    return Change(
        base=base,
        touched=frozenset(touched),
        added_parents={key: tuple(sorted(parents.get(key, ()))) for key in added},
        graph_changed=graph_changed,
        files=files,
        data_changed=data_dir is not None and any(_under(path, data_dir) for path in files),
    )


@dataclass(frozen=True)
class Decision:
    """Whether a test runs, and why in a few words."""

    run: bool
    reason: str


def decide(record: Reach | None, change: Change, test_files: Sequence[str]) -> Decision:
    """Run or deselect one test that uses the plugin's fixtures.

    ``test_files``: its module and the conftest.py files above it, relative to the repository.
    """
    since = f"since {change.base}"
    if record is None:
        return Decision(True, "no record of what it reaches")
    if record.failed:
        return Decision(True, "it failed in its last recorded run")
    changed_files = [path for path in test_files if path in change.files]
    if changed_files:
        return Decision(True, f"{', '.join(changed_files)} changed {since}")
    if change.data_changed and (record.keys or record.everything):
        return Decision(True, f"source data files changed {since}")
    if record.everything:
        asks = f"asks for {', '.join(record.everything)}"
        if change.graph_changed:
            return Decision(True, f"{asks}; the asset graph changed {since}")
        return Decision(False, f"{asks}; the asset graph did not change {since}")
    hit = sorted(set(record.keys) & change.touched)
    if hit:
        return Decision(True, f"reaches {listed(hit)}, changed {since}")
    new = sorted(key for key, parents in change.added_parents.items() if set(parents) & set(record.keys))
    if new:
        return Decision(True, f"reaches a parent of {listed(new)}, added {since}")
    reaches = f"reaches {listed(list(record.keys))}" if record.keys else "reaches no asset"
    return Decision(False, f"{reaches}; nothing it reaches changed {since}")


def _under(path: str, folder: str) -> bool:
    return folder in ("", ".") or PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def relevant_files(module: str) -> list[str]:
    """A test module and the conftest.py files that apply to it (in its folder and each folder
    above, up to the repository's top), all relative to the repository."""
    found = [module]
    for folder in PurePosixPath(module).parents:
        found.append(str(folder / "conftest.py") if str(folder) != "." else "conftest.py")
    return found


def changed_files(repo: Any, revision: str) -> frozenset[str]:
    """Repository-relative paths that differ between ``revision`` and the working tree (staged
    or not; both sides of a rename), and untracked files that are not ignored.

    Raises:
        RevisionError: git cannot compare with ``revision``.
    """
    found: set[str] = set()
    for args in (
        ("diff", "--name-only", "--no-renames", revision, "--"),
        ("ls-files", "--others", "--exclude-standard", "--full-name", "--", ":/"),
    ):
        done = git(repo, *args)
        if done.returncode != 0:
            raise RevisionError(f"git {' '.join(args[:2])} against {revision!r} failed: {done.stderr.strip()}")
        found.update(line for line in done.stdout.splitlines() if line)
    return frozenset(found)
