"""Everything that runs dbt: the in-process runner (:mod:`.runner`) and the warm worker that
dagster-dbt's subprocesses reach (:mod:`.worker` in pytest, :mod:`.server` in its own process,
:mod:`.client` as the ``dbt`` executable, :mod:`.partial_parse` for the parse it keeps).

The touches of dbt's and dbt-duckdb's internals these need are in
:mod:`pytest_dbt_assets.compat.dbt`. Importing this package imports no dbt.
"""
