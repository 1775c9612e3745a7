# Two commands on a fresh machine:  `make run`  (embedded stack + main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint

$(BIN)/tenantctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

run: $(BIN)/tenantctl
	$(BIN)/tenantctl dev --demo

test: $(BIN)/tenantctl
	$(BIN)/python -m pytest

lint: $(BIN)/tenantctl
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
