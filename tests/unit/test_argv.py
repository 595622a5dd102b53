"""pytest_dbt_assets.argv: reading dbt command lines, pure (no dbt run)."""

from __future__ import annotations

import json

import pytest

from pytest_dbt_assets.argv import (
    command_path,
    dbt_options,
    last_value,
    merge_vars,
    pick,
    short_group,
    split_flag,
    values_of,
    vars_text,
    without_flag,
)


@pytest.mark.parametrize(
    ("args", "rest", "values"),
    [
        (["run", "--target", "ci", "-x"], ["run", "-x"], ["ci"]),
        (["run", "--target=ci"], ["run"], ["ci"]),
        (["run", "-tprod"], ["run"], ["prod"]),
        (["run", "-t", "prod", "--select", "x"], ["run", "--select", "x"], ["prod"]),
        (["run", "--target", "a", "-t", "b", "--target=c"], ["run"], ["a", "b", "c"]),
        # a value that looks like a flag is still the value: click takes it so
        (["run", "--target", "--select"], ["run"], ["--select"]),
        # without its value, the flag stays for dbt to report
        (["run", "--target"], ["run", "--target"], []),
        # another flag that only starts like it is left alone
        (["run", "--target-path", "x", "--targets=y"], ["run", "--target-path", "x", "--targets=y"], []),
    ],
)
def test_split_flag(args: list[str], rest: list[str], values: list[str]) -> None:
    assert split_flag(args, "--target", "-t") == (rest, values)


def test_last_value_is_what_dbt_takes() -> None:
    args = ["build", "--profiles-dir", "/a", "--profiles-dir=/b"]
    assert last_value(args, "--profiles-dir") == "/b"
    assert values_of(args, "--profiles-dir") == ["/a", "/b"]
    assert last_value(["build"], "--profiles-dir") is None


def test_without_flag() -> None:
    args = ["build", "--indirect-selection", "eager", "--select", "x", "--indirect-selection=cautious"]
    assert without_flag(args, "--indirect-selection") == ["build", "--select", "x"]


def test_pick_keeps_flags_as_written() -> None:
    argv = ["build", "--target", "ci", "--select", "x", "--vars={a: 1}", "--profiles-dir", "/p"]
    assert pick(argv, {"--target", "--vars", "--profiles-dir"}) == [
        "--target",
        "ci",
        "--vars={a: 1}",
        "--profiles-dir",
        "/p",
    ]
    assert pick(["run", "-x"], {"--target"}) == []


@pytest.mark.parametrize(
    ("token", "named"),
    [
        ("-xt", ["-x", "-t"]),
        ("-xtprod", ["-x", "-t"]),  # `prod` is -t's value, not three more flags
        ("-sstg_orders", ["-s"]),
        ("-x", ["-x"]),
        ("--target", []),
        ("-", []),
        ("-1", []),
        ("prod", []),
    ],
)
def test_short_group(token: str, named: list[str]) -> None:
    assert short_group(token, {"-t", "-s"}) == named


def test_repeated_vars_are_read_in_order() -> None:
    args = ["run", "--vars", "{a: 1}", "--select", "x", "--vars={b: 2}"]
    assert vars_text(args) == "{a: 1} {b: 2}"
    assert vars_text(["run"]) == ""


def test_merge_vars_precedence() -> None:
    args = ["run", "--vars", "{a: 1, b: 1, c: 1}", "--select", "x", "--vars={b: 2, c: 2}"]
    merged = merge_vars(args, {"c": 3, "d": "day"})
    assert merged[:3] == ["run", "--select", "x"]
    assert merged[3] == "--vars"
    # the test's values over the later --vars over the earlier one
    assert json.loads(merged[4]) == {"a": 1, "b": 2, "c": 3, "d": "day"}
    assert len(merged) == 5


def test_merge_vars_without_extra_keeps_args() -> None:
    args = ["run", "--vars", "{a: 1}", "--vars", "{b: 2}"]
    assert merge_vars(args, {}) == args
    assert merge_vars(["run"], {"a": 1}) == ["run", "--vars", '{"a": 1}']


def test_command_path() -> None:
    commands = {(): (), ("run",): (), ("source",): (), ("source", "freshness"): ()}
    assert command_path(["run", "--select", "x"], commands) == ("run",)
    assert command_path(["source", "freshness", "-t", "x"], commands) == ("source", "freshness")
    assert command_path(["source"], commands) == ("source",)
    assert command_path(["--debug", "run"], commands) == ()
    assert command_path(["bogus", "run"], commands) == ()
    assert command_path(["source", "bogus"], commands) == ()
    assert command_path(["run", "models"], commands) == ("run",)  # `run` has no subcommands


def test_dbt_options_come_from_dbts_own_commands() -> None:
    run = dbt_options(["run", "--select", "x"])
    assert run.params["--profiles-dir"] == "profiles_dir"
    assert run.params["-t"] == "target"
    assert {"--target", "-t", "--select", "-s", "--vars"} <= run.takes_value
    assert "--full-refresh" not in run.takes_value
    assert {"-t", "-s"} <= run.shorts
    # an unknown command: the options of every command
    assert run.takes_value <= dbt_options(["bogus"]).takes_value
