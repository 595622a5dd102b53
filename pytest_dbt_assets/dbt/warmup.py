"""A dbt build of a throwaway project, run once by a zygote started with ``warm_runtime``
(:mod:`.zygote`; pytest's own suite starts one) before it forks any server, so that each server
and each command's child starts with what dbt builds on first use already built.

Importing dbt is not all of dbt's start: its first parse and first build in a process also
build classes' decoders and encoders, compile the adapter's macro templates, and more, which a
second parse or build finds done. A server forked from a zygote that has only imported dbt
pays that for its own parse, and every command's child, forked from the server, pays the
build's share again, since no child lives on to keep it. Measured on the shop project: the
server's parse 0.68 -> 0.17 s of CPU, each build in a child about 0.75 -> 0.6 s.

dbt's static parser is left off here: its library starts threads on first use, which a forked
child does not have, and a child that parsed with it then waited for them for ever.
"""

from __future__ import annotations

import contextlib
import multiprocessing.resource_tracker
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_dbt_assets.compat import dbt as dbt_compat
from pytest_dbt_assets.dbt.runner import process_state, release_duckdb

# A seed, a view, a table and an incremental model with tests: the materializations most
# projects' commands run.
_PROJECT = {
    "dbt_project.yml": """
        name: pytest_dbt_assets_warmup
        profile: warmup
        flags:
          send_anonymous_usage_stats: false
    """,
    "seeds/warm_seed.csv": "id,name\n1,a\n2,b\n",
    "models/warm_view.sql": "select id, upper(name) as name from {{ ref('warm_seed') }}",
    "models/warm_table.sql": "{{ config(materialized='table') }} select * from {{ ref('warm_view') }}",
    "models/warm_incremental.sql": """
        {{ config(materialized='incremental', unique_key='id') }}
        select * from {{ ref('warm_table') }}
        {% if is_incremental() %} where id > (select max(id) from {{ this }}) {% endif %}
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: warm_table
            columns:
              - name: id
                data_tests: [unique, not_null]
    """,
}
# What the process keeps of its environment while dbt runs here: nothing of the user's dbt
# settings (DBT_PROFILES_DIR and kin) may reach this project.
_KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def warm_dbt_runtime(folder: Path) -> bool:
    """Parse and build the throwaway project in ``folder`` (made, then removed) in this
    process, compile the templates of all its macros (the adapter's), and let go of its
    DuckDB file; whether the build passed. Whatever goes wrong only leaves this process less
    warm."""
    from dbt.cli.main import dbtRunner

    project = folder / "warmup"
    built = False
    with contextlib.suppress(Exception), _isolated(project):
        for name, text in _PROJECT.items():
            path = project / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        profile = f"warmup:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{project / 'warm.duckdb'}'\n"
        (project / "profiles.yml").write_text(profile, encoding="utf-8")
        flags = ["--project-dir", str(project), "--profiles-dir", str(project), "--no-static-parser"]
        parsed = dbtRunner().invoke(["parse", *flags])
        manifest: Any = parsed.result
        if parsed.success:
            for macro in manifest.macros.values():
                with contextlib.suppress(Exception):
                    dbt_compat.compile_macro_template(macro)
            # As the worker runs a command: with the parsed manifest, dbt's log as JSON lines.
            built = dbtRunner(manifest=manifest).invoke(["build", *flags, "--log-format", "json"]).success
    release_duckdb()
    shutil.rmtree(project, ignore_errors=True)
    return built


@contextlib.contextmanager
def _isolated(project: Path) -> Iterator[None]:
    """Inside: this process runs in ``project`` with none of the user's dbt settings, and what
    dbt (or DuckDB, or a process started meanwhile) prints goes nowhere.

    multiprocessing's tracker of named semaphores is started here, so that it prints nowhere
    too: dbt's adapters make such semaphores, and this process and every server and dbt child
    forked from it share the tracker. It removes those a killed dbt child left and warns of
    them ("leaked semaphore objects") when it ends, with pytest's session, which is not the
    user's to act on.
    """
    environ = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    project.mkdir(parents=True, exist_ok=True)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
        multiprocessing.resource_tracker.ensure_running()
        with process_state(project, environ):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
