# wirenews task runner: `make help` lists the targets. `make test` is exactly what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCE ?= seeds/
OUTPUT ?= out/

.PHONY: help run test lint clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

run: $(VENV)/.installed ## Set up .venv and run the seeds through the pipeline into out/ (DirectRunner).
	$(BIN)/wirenews run --source $(SOURCE) --output $(OUTPUT)

test: $(VENV)/.installed-dev ## Install what the tests need and run the whole suite.
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev ## ruff over everything.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: ## Remove the virtual environment, outputs and caches.
	rm -rf $(VENV) $(OUTPUT) .pytest_cache .ruff_cache .hypothesis
