# videogen — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
FN ?=
NAME ?=
PYTEST_ARGS ?=
# Test processes: the suite mostly waits on servers, workers and browsers, so three share
# two cores well. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
DEPLOY_FLAGS ?=

.DEFAULT_GOAL := help

help: ## List the targets (colours only on a terminal)
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; else on=''; off=''; fi; \
	grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-12s%s %s\n", on, $$1, off, $$2}'

# '.[dev]': the runtime's dependencies, the local stack's (extra `local`), the reference
# worker's (`worker`) and the test tools; a deployed function gets only the first
# (`make build`).
$(STAMP): pyproject.toml
	./.ci/system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The pinned npm dev tools (package.json, package-lock.json): the Supabase CLI
# (tests/deploy/test_supabase_cli.py), supabase-js (also served to the web app at /app/)
# and playwright-core (tests/e2e/test_web_app.py, with .ci/system-deps' chromium).
$(NODE_STAMP): package.json package-lock.json | $(STAMP)
	./.ci/system-deps
	npm ci --no-audit --no-fund --loglevel=error
	node_modules/.bin/supabase --version >/dev/null
	node -e 'require("playwright-core")'
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP) ## Install system packages (as root), the virtualenv, the project and the Supabase CLI

run: setup ## The main job: database, functions, two workers, and a demo video
	$(BIN)/videogen demo

up: setup ## Start database, functions and workers in the background
	$(BIN)/videogen up

down: ## Stop everything `make up` started
	$(BIN)/videogen down

status: ## Show what runs
	$(BIN)/videogen status

test: setup ## Run the whole test suite against a real Postgres, ffmpeg and HTTP servers
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check), mypy and the import contracts (import-linter)
	$(BIN)/ruff check shared functions tests bench
	$(BIN)/ruff format --check shared functions tests bench
	$(BIN)/mypy shared/videogen shared/videogen_dev shared/videogen_worker
	for f in functions/*/main.py; do $(BIN)/mypy $$f || exit 1; done
	$(BIN)/lint-imports

bench: setup ## Benchmarks: SQL lifecycle, HTTP, cold start, end to end, realtime, render (prints ratios)
	$(BIN)/python bench/lifecycle_bench.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/e2e_bench.py
	$(BIN)/python bench/realtime_bench.py
	$(BIN)/python bench/devserver_bench.py
	$(BIN)/python bench/render_bench.py
	$(BIN)/python bench/metrics_bench.py

db-reset: setup ## Recreate the local database: platform stand-in, migrations, seed
	$(BIN)/videogen db reset

migration: setup ## Draft a migration from sql/schema: make migration NAME=add_profile_nickname
	@test -n "$(NAME)" || (echo "usage: make migration NAME=<snake_name>"; exit 2)
	$(BIN)/videogen migration draft $(NAME)

openapi: setup ## Regenerate openapi.yaml from the code
	$(BIN)/videogen openapi

build: setup ## Build one deployable function folder: make build FN=generate-video
	@test -n "$(FN)" || (echo "usage: make build FN=<function name>"; exit 2)
	$(BIN)/python -m videogen_dev build $(FN)

deploy: ## Deploy one function to Cloud Run functions: make deploy FN=generate-video
	@test -n "$(FN)" || (echo "usage: make deploy FN=<function name>"; exit 2)
	$(MAKE) build FN=$(FN)
	$(BIN)/videogen env-file > build/$(FN).env.yaml
	cd build/$(FN) && gcloud functions deploy $(FN) --gen2 --runtime=python312 \
	  --entry-point=$$(echo $(FN) | tr - _) --trigger-http --allow-unauthenticated \
	  --source=. --env-vars-file=../$(FN).env.yaml $(DEPLOY_FLAGS)

.PHONY: help setup run up down status test lint bench db-reset migration openapi build deploy
