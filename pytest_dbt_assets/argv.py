"""One reader of dbt command lines: the flags given, their values, and ``--vars`` merged.

dbt parses its arguments with click, so these follow click's rules: an option's value is the
next argument (``--target prod``) or follows ``=`` (``--target=prod``); a short option's value
may be glued on (``-tprod``), and short flags may be grouped (``-xt prod``); a repeated option
keeps its last value. Which options take a value is dbt's own knowledge: :func:`dbt_options`
reads it from dbt's click commands (through :mod:`pytest_dbt_assets.compat.dbt`).

Pure functions of a list of strings, apart from :func:`dbt_options`. Nothing here imports
pytest. Used by the isolated dbt resource, isolation and the dbt worker's parse keys (dbt/partial_parse.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_dbt_assets.compat.dbt import dbt_commands

VARS_FLAG = "--vars"


def split_flag(args: Sequence[str], flag: str, *aliases: str) -> tuple[list[str], list[str]]:
    """``args`` without every use of ``flag`` (or of a short alias such as ``-t``), and the
    values given to it, in order.

    Knows ``--flag value``, ``--flag=value``, ``-t value`` and ``-tvalue``. A flag that ends
    ``args`` without its value stays in the rest (dbt reports it). Every argument is read
    as written, whichever flag comes before it (``--select -tfoo`` reads ``-tfoo`` as ``-t foo``):
    the callers look for flags that dbt must not get twice. Grouped short flags (``-xtprod``)
    need to know which flags take values: see :func:`short_group`.
    """
    names = (flag, *aliases)
    shorts = [name for name in names if not name.startswith("--")]
    rest: list[str] = []
    values: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in names and index + 1 < len(args):
            values.append(args[index + 1])
            index += 2
            continue
        head, sep, value = arg.partition("=")
        if sep and head.startswith("--") and head in names:
            values.append(value)
        elif (short := next((s for s in shorts if arg.startswith(s) and len(arg) > len(s)), None)) is not None:
            values.append(arg[len(short) :])
        else:
            rest.append(arg)
        index += 1
    return rest, values


def values_of(args: Sequence[str], flag: str, *aliases: str) -> list[str]:
    """Every value given to ``flag`` (or an alias) in ``args``, in order."""
    return split_flag(args, flag, *aliases)[1]


def last_value(args: Sequence[str], flag: str, *aliases: str) -> str | None:
    """The value dbt takes for ``flag``: the last one given (click's rule), or None."""
    values = values_of(args, flag, *aliases)
    return values[-1] if values else None


def without_flag(args: Sequence[str], flag: str, *aliases: str) -> list[str]:
    """``args`` without ``flag`` and its values (e.g. a flag that would beat an environment
    variable the caller sets)."""
    return split_flag(args, flag, *aliases)[0]


def pick(args: Sequence[str], flags: Collection[str]) -> list[str]:
    """The arguments of ``args`` that give one of ``flags`` (each taking a value), as written
    and in order: ``pick(["run", "--target", "ci", "-x"], {"--target"}) == ["--target", "ci"]``."""
    picked: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in flags:
            picked += args[index : index + 2]
            index += 2
            continue
        if arg.split("=", 1)[0] in flags:
            picked.append(arg)
        index += 1
    return picked


def short_group(token: str, takes_value: Collection[str]) -> list[str]:
    """The short flags a single-dash argument names: ``-xt`` names ``-x`` and ``-t``.

    The letters after a flag that takes a value are its value, not flags: with ``-s`` taking
    one, ``-sstg_orders`` names ``-s`` only. An argument that is not a short flag group
    (``--long``, ``-``, a negative number) names none.
    """
    if token.startswith("--") or not token.startswith("-") or len(token) < 2 or token[1].isdigit():
        return []
    named: list[str] = []
    for letter in token[1:]:
        flag = "-" + letter
        named.append(flag)
        if flag in takes_value:
            break
    return named


def vars_text(args: Sequence[str]) -> str:
    """The ``--vars`` values of ``args`` joined with spaces (a key: same vars, same text)."""
    return " ".join(values_of(args, VARS_FLAG))


def merge_vars(args: Sequence[str], extra: Mapping[str, Any]) -> list[str]:
    """``args`` with ``extra`` merged into their ``--vars``, as one ``--vars`` at the end.

    Precedence: ``extra`` (the test's values) over each ``--vars`` given, a later ``--vars``
    over an earlier one (dbt itself keeps only the last one; merged, neither is lost).
    Without ``extra``, ``args`` are returned as given.
    """
    if not extra:
        return list(args)
    rest, values = split_flag(args, VARS_FLAG)
    merged: dict[str, Any] = {}
    for value in values:
        merged.update(yaml.safe_load(value) or {})
    merged.update(extra)
    return [*rest, VARS_FLAG, json.dumps(merged, sort_keys=True, default=str)]


@dataclass(frozen=True)
class DbtOptions:
    """What dbt's click commands say about their options.

    Attributes:
        params: every flag of every dbt command (``"--profiles-dir"``, ``"-t"``) -> the click
            parameter name (``"profiles_dir"``, ``"target"``).
        takes_value: the flags that take a value, of the command named (``dbt`` and, e.g.,
            ``run`` or ``source freshness``), or of all commands when none is named.
        shorts: the short flags of that command (or of all).
    """

    params: Mapping[str, str]
    takes_value: frozenset[str]
    shorts: frozenset[str]


def dbt_options(args: Sequence[str]) -> DbtOptions:
    """:class:`DbtOptions` for the dbt command ``args`` name (``["run", "--select", "x"]``)."""
    return _dbt_options(command_path(args, dbt_commands()))


def command_path(args: Sequence[str], commands: Mapping[tuple[str, ...], Any]) -> tuple[str, ...]:
    """The dbt command ``args`` name, as a path of ``commands`` (``("source", "freshness")``);
    ``()`` when they name none, or one dbt does not have."""
    path: tuple[str, ...] = ()
    for token in args:
        is_group = any(len(known) == len(path) + 1 and known[: len(path)] == path for known in commands)
        if not is_group or token.startswith("-"):
            break
        path = (*path, token)
        if path not in commands:
            return ()
    return path


@functools.cache
def _dbt_options(path: tuple[str, ...]) -> DbtOptions:
    params: dict[str, str] = {}
    takes_value: set[str] = set()
    shorts: set[str] = set()
    for known, options in dbt_commands().items():
        named = not path or known in {(), path}
        for option in options:
            params.update(dict.fromkeys(option.flags, option.name))
            if named:
                if option.takes_value:
                    takes_value.update(option.flags)
                shorts.update(flag for flag in option.flags if not flag.startswith("--"))
    return DbtOptions(params=params, takes_value=frozenset(takes_value), shorts=frozenset(shorts))
