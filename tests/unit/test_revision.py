"""The base revision's tree, read from git without touching the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dbt_assets.diff.revision import BaseRequest, Revision, extract_tree, repository_root, resolve_revision
from pytest_dbt_assets.errors import RevisionError
from tests.repos import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    (root / "models" / "a.sql").write_text("select 1 as id\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message=first")
    return root


def test_the_tree_of_a_revision_is_written_and_the_checkout_is_left_alone(repo: Path, tmp_path: Path) -> None:
    (repo / "models" / "a.sql").write_text("select 2 as id\n")  # an uncommitted change
    (repo / "models" / "new.sql").write_text("select 3 as id\n")  # an untracked file
    git(repo, "add", "models/new.sql")
    status = git(repo, "status", "--porcelain")
    revision = resolve_revision(repo, "main")
    extract_tree(repo, revision, tmp_path / "tree")
    assert (tmp_path / "tree" / "models" / "a.sql").read_text() == "select 1 as id\n"
    assert not (tmp_path / "tree" / "models" / "new.sql").exists()
    assert git(repo, "status", "--porcelain") == status
    assert (repo / "models" / "a.sql").read_text() == "select 2 as id\n"


def test_a_revision_resolves_to_its_commit_and_is_labelled_short(repo: Path) -> None:
    revision = resolve_revision(repo, "HEAD")
    assert revision.sha == git(repo, "rev-parse", "HEAD").strip()
    assert revision.label == f"HEAD ({revision.sha[:7]})"


def test_an_unknown_revision_says_how_to_fetch_it(repo: Path) -> None:
    with pytest.raises(RevisionError, match=r"git fetch origin main.*fetch-depth: 0"):
        resolve_revision(repo, "origin/main")


def test_a_folder_outside_git_is_told(tmp_path: Path) -> None:
    with pytest.raises(RevisionError, match="not in a git repository"):
        repository_root(tmp_path)


def test_the_request_key_follows_the_commit_the_selection_and_the_source_data(repo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "shop").mkdir(parents=True)
    (data / "shop" / "orders.csv").write_text("id\n1\n")
    first = Revision("main", "a" * 40)
    request = BaseRequest(first, caller_dir=repo, rootdir=repo, inifile=None, data_dir=data, materialize=True)
    key = request.key()
    assert BaseRequest(first, caller_dir=repo, rootdir=repo, inifile=None, data_dir=data, materialize=True).key() == key
    assert BaseRequest(Revision("main", "b" * 40), repo, repo, None, data, True).key() != key
    assert BaseRequest(first, repo, repo, None, data, True, dbt_select="+customers").key() != key
    assert BaseRequest(first, repo, repo, None, data, True, data={"shop.orders": [{"id": 2}]}).key() != key
    (data / "shop" / "orders.csv").write_text("id\n1\n2\n")
    assert request.key() != key
