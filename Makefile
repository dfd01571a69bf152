# Two set-up commands: `make run` and `make test`. Both create .venv on demand.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
SEEDS  ?= 20000

.PHONY: run test lint typecheck sim clean proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/kvstore serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check kvstore tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict kvstore

test: lint typecheck
	$(BIN)/pytest -n 2 tests

# Long simulation run: make sim SEEDS=100000
sim: $(VENV)/.installed-test
	$(BIN)/pytest -n 2 tests/sim --sim-seeds=$(SEEDS) -k "not planted"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Regenerate kvstore/api/pb from proto/ (the drift test fails until you do).
proto: $(VENV)/.installed-test
	$(BIN)/python proto/generate.py
