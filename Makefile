# Coinlens — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## List every target with its purpose
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python assets
	$(BIN)/pip install -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python assets chromium
	$(BIN)/pip install -q -e '.[dev,bench]'  # bench extra: vectorbt parity runs in CI (test-only, never shipped)
	@touch $@ $(STAMP)

install: $(STAMP) ## Create .venv and install Coinlens
dev: $(DEV_STAMP) ## Create .venv with the development and test tools

VENDOR := src/coinlens/web/static/vendor

assets: $(VENDOR)/.installed ## npm ci (pinned in package-lock.json), vendor the chart library and htmx

$(VENDOR)/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js $(VENDOR)/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	@touch $@

chromium: ## Install Debian's chromium for the browser tests when /usr/bin/chromium is missing
	@if [ -x /usr/bin/chromium ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y chromium; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y chromium; \
	else echo "chromium: /usr/bin/chromium is missing and neither root nor sudo is available;"; \
	     echo "          run 'apt-get install -y chromium' as root (browser tests skip locally, fail under CI=true)"; fi

run: $(STAMP) ## Set up, migrate, load the embedded real data, compute, serve on :8000
	$(BIN)/coinlens up

lint: $(DEV_STAMP) ## ruff, formatting, mypy and the import-layer contracts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/mypy bench scripts
	$(BIN)/lint-imports

test: $(DEV_STAMP) ## Set up and run lint plus the whole test suite (PostgreSQL at 127.0.0.1:5432)
	$(MAKE) lint
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup $(PYTEST_ARGS)

evaluate: $(STAMP) ## Load the embedded data, then both full walk-forward evaluations into reports/
	$(BIN)/coinlens load
	$(BIN)/coinlens evaluate grades
	$(BIN)/coinlens evaluate forecasts

dataset: $(DEV_STAMP) ## Rebuild the packaged dataset from ../shared/data
	$(BIN)/python scripts/build_dataset.py

bench-storage: $(DEV_STAMP) ## Benchmark ingest and panel reads: SQLite, PostgreSQL vs Parquet
	$(BIN)/python bench/storage.py

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .mypy_cache .ruff_cache

.PHONY: help install dev assets chromium run lint test evaluate dataset bench-storage clean
