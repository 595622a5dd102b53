# Two commands set up everything on a fresh machine with Python 3.11:
#   make demo   - the plugin on example_project/ (its snapshots must pass)
#   make test   - the whole test suite (plugin tests, then example_project)
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# dbt-core 1.12 is not installable here; constraints.txt pins the tested set.
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: $(INSTALLED)
	cd example_project && PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider

test: $(INSTALLED)
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -n 2
	cd example_project && PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider

bench: $(INSTALLED)
	PATH="$(BIN):$$PATH" $(BIN)/python benchmarks/run.py --sizes 5 100 --repeat 3

clean:
	rm -rf $(VENV) *.egg-info
