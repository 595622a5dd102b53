# Two commands set up everything on a fresh machine with Python 3.11:
#   make demo   - the plugin on example_project/, in both layouts (its snapshots must pass)
#   make test   - lint and types, the suite, example_project, the lowest supported versions,
#                 and the package as users install it; each step prints its time
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The lower ends of pyproject's ranges (constraints-lowest.txt), a fast subset of the suite.
LOWEST_VENV := .venv-lowest
LOWEST_BIN := $(CURDIR)/$(LOWEST_VENV)/bin
# The lower ends of the snowflake extra (constraints-lowest-snowflake.txt): the Snowflake tests.
LOWEST_SF_VENV := .venv-lowest-snowflake
LOWEST_SF_BIN := $(CURDIR)/$(LOWEST_SF_VENV)/bin
# A clean venv with the built wheel, not an editable install.
WHEEL_VENV := .venv-wheel
WHEEL_BIN := $(CURDIR)/$(WHEEL_VENV)/bin
# dbt-core 1.12 is not installable here; constraints.txt pins the tested set.
INSTALLED := $(VENV)/.installed
LOWEST_INSTALLED := $(LOWEST_VENV)/.installed
LOWEST_SF_INSTALLED := $(LOWEST_SF_VENV)/.installed
STEP := $(CURDIR)/.ci/step
# Parse, graph snapshot, the worker, a materialization with row counts, snapshot diffs, cache.
LOWEST_TESTS := tests/unit/test_snapshot.py \
	tests/e2e/test_graph.py::test_custom_translator_keys_groups_and_deps_and_the_user_tree_unchanged \
	tests/e2e/test_graph.py::test_changed_ref_asset_and_group_fail_snapshot_until_updated \
	tests/e2e/test_materialize.py::test_row_counts_of_every_relation_built \
	tests/e2e/test_snapshot.py::test_materialization_changes_are_told_in_words \
	tests/e2e/test_cache.py::test_warm_session_runs_no_parse_and_a_changed_or_damaged_entry_parses_again
# The warehouse seam's unit tests, the emulator's differences, a Snowflake team's repo, a refused login.
LOWEST_SF_TESTS := tests/unit/test_warehouse.py tests/unit/test_snowflake_dialect.py \
	"tests/e2e/test_snowflake.py::test_snowflake_team_repo_passes_as_it_is[no-secrets-0]" \
	tests/e2e/test_snowflake.py::test_a_real_snowflake_login_during_a_materialization_is_refused

.PHONY: demo test lint suite example lowest lowest-snowflake package fix bench clean

$(INSTALLED): pyproject.toml constraints.txt
	@$(STEP) setup '$(PYTHON) -m venv $(VENV) \
		&& $(BIN)/python -m pip install --quiet --upgrade pip \
		&& $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"'
	touch $@

$(LOWEST_INSTALLED): pyproject.toml constraints-lowest.txt
	@$(STEP) setup-lowest '$(PYTHON) -m venv $(LOWEST_VENV) \
		&& $(LOWEST_BIN)/python -m pip install --quiet --upgrade pip \
		&& $(LOWEST_BIN)/python -m pip install --quiet -c constraints-lowest.txt -e ".[test]"'
	touch $@

$(LOWEST_SF_INSTALLED): pyproject.toml constraints-lowest-snowflake.txt
	@$(STEP) setup-lowest-snowflake '$(PYTHON) -m venv $(LOWEST_SF_VENV) \
		&& $(LOWEST_SF_BIN)/python -m pip install --quiet --upgrade pip \
		&& $(LOWEST_SF_BIN)/python -m pip install --quiet -c constraints-lowest-snowflake.txt -e ".[test,snowflake]" dagster-snowflake'
	touch $@

# example_project in both layouts: @dbt_assets beside the dbt project, and jaffle_components/
# (the same dbt project loaded by a DbtProjectComponent, as `create-dagster project` lays it out).
EXAMPLES := example_project example_project/jaffle_components example_project/jaffle_snowflake
RUN_EXAMPLES := for dir in $(EXAMPLES); do (cd $$dir && PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider) || exit 1; done

demo: $(INSTALLED)
	@$(RUN_EXAMPLES)

test: lint suite example lowest lowest-snowflake package
	@echo "make test: lint, suite, example, lowest, lowest-snowflake and package passed"

lint: $(INSTALLED)
	@$(STEP) lint '$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy'

# worksteal: an idle worker takes tests queued on the other, so no worker is left with a long
# tail (tests/conftest.py also starts the long end-to-end tests first). Not in addopts: the
# lowest step's pytest-xdist 3.0 does not know it.
suite: $(INSTALLED)
	@$(STEP) suite 'PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 --dist worksteal'

example: $(INSTALLED)
	@$(STEP) example '$(RUN_EXAMPLES)'

lowest: $(LOWEST_INSTALLED)
	@$(STEP) lowest 'PATH="$(LOWEST_BIN):$$PATH" $(LOWEST_BIN)/python -m pip list 2>/dev/null \
			| grep -iE "^(dagster|dagster-dbt|dbt-core|dbt-duckdb|duckdb|pytest|syrupy|PyYAML) " \
		&& PATH="$(LOWEST_BIN):$$PATH" $(LOWEST_BIN)/python -m pytest -p no:cacheprovider $(LOWEST_TESTS)'

lowest-snowflake: $(LOWEST_SF_INSTALLED)
	@$(STEP) lowest-snowflake 'PATH="$(LOWEST_SF_BIN):$$PATH" $(LOWEST_SF_BIN)/python -m pip list 2>/dev/null \
			| grep -iE "^(dagster|dagster-dbt|dbt-core|dbt-snowflake|duckdb|fakesnow|pytest|syrupy) " \
		&& PATH="$(LOWEST_SF_BIN):$$PATH" $(LOWEST_SF_BIN)/python -m pytest -p no:cacheprovider $(LOWEST_SF_TESTS)'

# Build sdist and wheel as a user's pip would, check their metadata, then run example_project
# from the wheel in a fresh venv (the repo is not on sys.path there).
package: $(INSTALLED)
	@$(STEP) package 'rm -rf dist build $(WHEEL_VENV) \
		&& $(BIN)/python -m build --outdir dist . \
		&& $(BIN)/twine check --strict dist/* \
		&& $(BIN)/python scripts/check_wheel.py dist/*.whl \
		&& $(PYTHON) -m venv $(WHEEL_VENV) \
		&& $(WHEEL_BIN)/python -m pip install --quiet --upgrade pip \
		&& $(WHEEL_BIN)/python -m pip install --quiet -c constraints.txt dist/*.whl \
		&& cd example_project \
		&& $(WHEEL_BIN)/python -c "import pytest_dbt_assets; print(\"plugin from\", pytest_dbt_assets.__file__)" \
		&& PATH="$(WHEEL_BIN):$$PATH" $(WHEEL_BIN)/python -m pytest -p no:cacheprovider'

# Not part of the two commands: fix what ruff can fix by itself.
fix: $(INSTALLED)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(INSTALLED)
	PATH="$(BIN):$$PATH" $(BIN)/python benchmarks/run.py --sizes 5 100 --repeat 3

clean:
	rm -rf $(VENV) $(LOWEST_VENV) $(LOWEST_SF_VENV) $(WHEEL_VENV) dist build *.egg-info .mypy_cache .ruff_cache
