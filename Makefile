# wirenews task runner: `make help` lists the targets. `make test` is exactly what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCE ?= seeds/
OUTPUT ?= out/
# Beam's Python SDK and its Flink job server are pinned to one version (pyproject.toml): the
# newest whose Flink runner Maven Central serves here. Prism, the local runner for streaming
# jobs, is newer: it speaks the portable Job API to the older SDK, and only 2.77 has the
# streaming fixes we need (README, Runners).
BEAM_VERSION := 2.62.0
PRISM_VERSION := 2.77.0
PRISM := .bin/prism

# Debian packages the tests use: kcat (an independent Kafka client) and avro-bin (avrocat,
# Avro's C implementation). Java 17 and Maven, which the local Kafka broker needs, come
# with the machine.
DEBIAN_PACKAGES := kcat avro-bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help run test lint clean system-deps prism flink

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

system-deps: ## Install the Debian packages the tests use.
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(PRISM):
	GOBIN=$(CURDIR)/.bin GOFLAGS=-buildvcs=false go install github.com/apache/beam/sdks/v2/go/cmd/prism@v$(PRISM_VERSION)

prism: $(PRISM) ## Build Prism (streaming runs) from the Go module proxy into .bin/.

flink: $(VENV)/.installed ## Fetch Beam's Flink job server (Maven Central) into ~/.apache_beam/cache/jars.
	$(BIN)/python -m pipeline.flink

test: $(VENV)/.installed-dev system-deps $(PRISM) flink ## Install what the tests need and run the whole suite (it starts a Kafka broker).
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev ## ruff over everything.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: ## Remove the virtual environment, outputs and caches.
	rm -rf $(VENV) $(OUTPUT) .pytest_cache .ruff_cache .hypothesis
