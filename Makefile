# ModelLedger: every ops entry point.
#   make demo    bring the whole stack up, then train, register, anchor and verify a model (from a fresh clone)
#   make test    chaincode checks, unit and integration tests (the integration tests start their own stack)
# Run `make help` for the rest.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/modelledger

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# --- setup --------------------------------------------------------------------------------
# Quiet unless it fails: the installers' output goes to a temporary log, printed (and kept) only on failure.
# uv (from PyPI, into the venv) resolves and installs the same packages as pip in seconds (pip: ~70 s warm,
# ~140 s cold). uv reads neither pip.conf nor PIP_* variables: tools/uv_from_pip.py turns pip's index, extra
# indexes, wheel folders and CA bundle into uv's settings, so both install from the same places. --native-tls
# makes it trust the system's certificates, as pip does here; --compile-bytecode
# writes the .pyc files at install time, as pip does (with PYTHONDONTWRITEBYTECODE set, as on this machine, an
# install without them would compile MLflow from source at every start: 9 s instead of 3.6 s). If uv cannot be
# had or fails, pip does the install instead. (See docs/operations.md, "Python packages".)
UV_VERSION := 0.13.10
$(VENV)/.installed: pyproject.toml tools/uv_from_pip.py
	@t0=$$(date +%s); log="$$(mktemp -t modelledger-install.XXXXXX)"; spec='.[dev,demo,postgres]'; exec 3>&1; \
	echo "install: installing ModelLedger and its dev, demo and postgres dependencies into $(VENV) (log: $$log)"; \
	if { test -x $(PY) || $(PYTHON) -m venv $(VENV); } >>"$$log" 2>&1 \
	  && { { $(PY) -m pip install --quiet 'uv==$(UV_VERSION)' && eval "$$($(PY) tools/uv_from_pip.py)" \
	         && $(VENV)/bin/uv pip install --native-tls --compile-bytecode --quiet --python $(PY) -e "$$spec"; } \
	       || { echo "install: uv failed (see the log); installing with pip instead (slower)" >&3; \
	            { $(PY) -m pip install --quiet --upgrade pip || true; } && $(PY) -m pip install --quiet -e "$$spec"; }; } >>"$$log" 2>&1; then \
	  rm -f "$$log"; touch $@; echo "install: done in $$(( $$(date +%s) - t0 ))s"; \
	else \
	  echo "install: FAILED; the output of venv and the installers (kept in $$log):" >&2; cat "$$log" >&2; exit 1; \
	fi

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install ModelLedger with its dev dependencies

.PHONY: tools
tools: ## Build the pinned Fabric, Fabric CA and MinIO binaries into .tools/ (seconds when up to date)
	@$(if $(_STACK_SUBMAKE),:,bash tools/install.sh)

# --- the whole stack (grows with later parts) ----------------------------------------------
.PHONY: demo
demo: up ## Bring everything up, then train, register, anchor and verify a model (and a tampered copy)
	@$(CLI) demo

.PHONY: demo-clean
demo-clean: install ## Delete the demo's log of MLflow's and the other libraries' output (<state>/demo/demo.log)
	@$(CLI) demo-clean

.PHONY: up
up: ## Bring the stack up: network, chaincode, S3, MLflow, bridge (idempotent; two parts at a time)
	@$(MAKE) --no-print-directory -j2 install tools
	@if [ -t 1 ]; then export TTY_COMPATIBLE=1 TTY_INTERACTIVE=0 COLUMNS="$${COLUMNS:-$$(tput cols 2>/dev/null || echo 80)}"; fi; \
	$(MAKE) --no-print-directory -j2 --output-sync=target _STACK_SUBMAKE=1 stack-up

# The Python install and the tool builds run side by side first (their lines interleave; each says what it is).
# Then the network (then the chaincode) and S3 (then MLflow) start side by side; the bridge waits for both. Each
# part's output is printed whole when it ends (--output-sync). On a terminal it reads as on one: rich's
# TTY_COMPATIBLE keeps colours and tables at the terminal's width, TTY_INTERACTIVE=0 drops the spinner (its
# frames would only be replayed).
.PHONY: stack-up
stack-up: network-up deploy-chaincode s3-up mlflow-up bridge-up
# The order of the parts, for `make up` only (_STACK_SUBMAKE marks its sub-make; not a setting for users):
# `make deploy-chaincode` or `make bridge-up` alone does not also bring up the network or deploy the chaincode.
ifdef _STACK_SUBMAKE
deploy-chaincode: network-up
bridge-up: deploy-chaincode
endif

.PHONY: down
down: bridge-down mlflow-down network-down s3-down ## Stop the stack, keeping all data

.PHONY: status
status: install ## Status of the stack (nodes, chaincode servers, S3, MLflow, bridge); exit 1 if any part is unhealthy
	@rc=0; $(CLI) network status || rc=1; $(CLI) s3 status || rc=1; $(CLI) mlflow status || rc=1; \
	$(CLI) bridge status || rc=1; exit $$rc

.PHONY: clean
clean: demo-clean bridge-clean mlflow-clean network-clean s3-clean ## Stop the stack and wipe all generated state

# --- MLflow and the bridge ----------------------------------------------------------------
.PHONY: mlflow-up
mlflow-up: install s3-up ## Start the MLflow tracking server on 127.0.0.1:7950 (SQLite, artifacts on MinIO, webhooks)
	@$(CLI) mlflow up

.PHONY: mlflow-down
mlflow-down: install ## Stop the MLflow tracking server (its database is kept)
	@$(CLI) mlflow down

.PHONY: mlflow-clean
mlflow-clean: install ## Stop MLflow and delete its database
	@$(CLI) mlflow clean

.PHONY: bridge-up
bridge-up: install mlflow-up ## Install the MLflow webhook and start the bridge on 127.0.0.1:7960 (idempotent)
	@$(CLI) bridge install
	@$(CLI) bridge up

.PHONY: bridge-down
bridge-down: install ## Stop the bridge (its outbox keeps every job)
	@$(CLI) bridge down

.PHONY: bridge-clean
bridge-clean: install ## Stop the bridge and delete its outbox and webhook secret
	@$(CLI) bridge clean

.PHONY: bridge-status
bridge-status: install ## Bridge health, outbox counts and jobs
	@$(CLI) bridge status; $(CLI) bridge jobs

# --- network ------------------------------------------------------------------------------
.PHONY: network-up
network-up: install tools ## Start CAs, orderers and peers, create and join the channel
	@$(CLI) network up

.PHONY: network-down
network-down: install ## Stop the network's processes (by pid); keep ledgers and identities
	@$(CLI) network down

.PHONY: network-status
network-status: install ## Health, heights and members of every node (JSON: make network-status JSON=1)
	@$(CLI) network status $(if $(JSON),--json)

.PHONY: network-logs
network-logs: install ## Last lines of every node's log (one node: make network-logs NODE=peer0-Org1)
	@$(CLI) network logs $(NODE)

.PHONY: network-clean
network-clean: install ## Stop the network and delete its state
	@$(CLI) network clean

# --- S3 (MinIO) ---------------------------------------------------------------------------
.PHONY: s3-up
s3-up: install tools ## Start MinIO on 127.0.0.1:7900 (TLS) and create the anchored bucket (idempotent)
	@$(CLI) s3 up

.PHONY: s3-down
s3-down: install ## Stop MinIO (by pid); objects are kept
	@$(CLI) s3 down

.PHONY: s3-status
s3-status: install ## MinIO health and the anchored bucket's Object Lock settings (JSON: make s3-status JSON=1)
	@$(CLI) s3 status $(if $(JSON),--json)

.PHONY: s3-clean
s3-clean: install ## Stop MinIO and delete its state, objects included
	@$(CLI) s3 clean

# --- chaincode ----------------------------------------------------------------------------
.PHONY: deploy-chaincode
deploy-chaincode: install ## Build, install, approve and commit the registry chaincode; start its servers (idempotent)
	@$(CLI) chaincode deploy

.PHONY: upgrade-chaincode
upgrade-chaincode: install ## Deploy chaincode/ as the next version and sequence; state is kept
	@$(CLI) chaincode upgrade

.PHONY: chaincode-status
chaincode-status: install ## Committed definition and chaincode server health
	@$(CLI) chaincode status $(if $(JSON),--json)

.PHONY: chaincode-check
chaincode-check: ## go vet, Go unit tests with coverage (>= 85%), determinism check, a short fuzz run
	@bash chaincode/check.sh

# --- benchmarks (not tests: they print figures and ratios, and assert nothing) --------------
bench/node/node_modules/.package-lock.json: bench/node/package-lock.json
	npm ci --prefix bench/node --no-audit --no-fund --loglevel=error

.PHONY: bench
bench: install tools bench/node/node_modules/.package-lock.json ## Benchmarks: SDK vs Node client; digests, uploads vs openssl, boto3; bridge latency vs its parts
	$(PY) bench/submit_vs_node.py
	$(PY) bench/store_throughput.py
	$(PY) bench/bridge_latency.py

# --- quality ------------------------------------------------------------------------------
.PHONY: test
test: install tools ## Chaincode checks, unit tests, then integration tests against real Fabric nodes
	@bash chaincode/check.sh
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration -q -m integration

.PHONY: test-unit
test-unit: install ## Unit tests only (no servers)
	$(PY) -m pytest tests/unit -q

.PHONY: lint
lint: install ## ruff, and gofmt on the chaincode
	$(VENV)/bin/ruff check network runtime sdk mlops tests bench tools
	@unformatted="$$(gofmt -l chaincode)"; if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
