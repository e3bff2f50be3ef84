# Developer entry points. `make run` serves the API on 127.0.0.1:$(PORT) backed by
# DynamoDB Local; `make test` installs everything and runs the checks and the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: help install run test check lint typecheck unit integration clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x "$(PY)" || "$$(scripts/find-python)" -m venv "$(VENV)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm was not found: install Node.js 18 or newer, which ships npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed ## Create .venv and fetch DynamoDB Local

run: install ## Serve the API on 127.0.0.1:$(PORT) with DynamoDB Local
	@command -v java >/dev/null || { echo "error: java was not found: DynamoDB Local needs Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	$(PY) -m localdev.run --port $(PORT)

check: lint typecheck ## Check formatting, lint and types

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

unit: install ## Run the unit tests (moto, no servers)
	$(PY) -m pytest tests/unit -q

integration: install ## Run the HTTP tests against chalice local and DynamoDB Local
	$(PY) -m pytest tests/integration -q

test: install check ## Install, check, and run every test
	$(PY) -m pytest -q

clean: ## Remove the virtualenv, node_modules and caches
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .run

include $(wildcard mk/*.mk)
