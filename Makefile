# Rapport: `make run` brings the whole system up live; `make test` passes the tests.
# Both install what they need: uv and the Python packages into .venv, Apache Kafka's
# jars from Maven Central (via mvn), and Redis from Debian's packages.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .cache/uv/bin/uv
VENV := .venv
RAPPORT := $(VENV)/bin/rapport
PYTEST_ARGS ?=

.PHONY: run up down status test test-unit test-integration test-e2e test-browser bench lint clean wipe

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

## run: install, start Kafka, Redis and the five services (console: /agent and /ops on 8005), load sample offers, simulate traffic until Ctrl-C
run: $(VENV)/.synced
	$(RAPPORT) run

## up: start everything in the background; returns once every /readyz answers 200
up: $(VENV)/.synced
	$(RAPPORT) stack up

## down: stop everything `make up`/`make run` started
down:
	@if [ -x $(RAPPORT) ]; then $(RAPPORT) stack down; else echo "Nothing was running."; fi

status: $(VENV)/.synced
	$(RAPPORT) stack status

## test: unit, integration and end-to-end tests against a real Kafka and Redis of their own
test: $(VENV)/.synced
	@set -o pipefail; rc=0; \
	$(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	$(RAPPORT) stack down --profile test >/dev/null || true; \
	exit $$rc

test-unit: $(VENV)/.synced
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.synced
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

test-e2e: $(VENV)/.synced
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

test-browser: $(VENV)/.synced
	$(VENV)/bin/pytest tests/browser $(PYTEST_ARGS)

## bench: print throughput, latency and memory figures against the limits measured in the same run
BENCH_ARGS ?=
PROFILE_BENCH_ARGS ?=
SCORING_BENCH_ARGS ?=
NEXT_ACTION_BENCH_ARGS ?=
NAB_DATA ?= ../shared/data/nab-dev
# Each bench leaves its headline figures in .bench/; a bench that fails does not stop the
# others, and `bench summary` (last) prints them in one table, marking what is missing.
bench: $(VENV)/.synced
	@rm -rf .bench; rc=0; \
	$(RAPPORT) bench ingest $(BENCH_ARGS) || rc=1; \
	$(RAPPORT) bench profile $(PROFILE_BENCH_ARGS) || rc=1; \
	$(RAPPORT) bench scoring $(SCORING_BENCH_ARGS) || rc=1; \
	$(RAPPORT) bench next-action $(NEXT_ACTION_BENCH_ARGS) || rc=1; \
	if [ -d "$(NAB_DATA)/data" ]; then \
	  $(RAPPORT) eval-spikes --leave-one-out --data $(NAB_DATA)/data \
	    --windows $(NAB_DATA)/combined_windows.json || rc=1; \
	  $(RAPPORT) eval-forecast --data $(NAB_DATA)/data || rc=1; \
	else echo "no NAB corpus at $(NAB_DATA): spike detector and forecasts not scored"; fi; \
	$(RAPPORT) bench summary || rc=1; \
	exit $$rc

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .

## wipe: stop and delete the local stack's data (Kafka log, Redis AOF)
wipe:
	@if [ -x $(RAPPORT) ]; then $(RAPPORT) stack wipe; $(RAPPORT) stack wipe --profile test; fi

clean: wipe
	rm -rf $(VENV) .cache .logs .pytest_cache .ruff_cache
