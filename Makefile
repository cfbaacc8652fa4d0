# edgeproof: `make demo` runs the whole pipeline on the bundled example; `make test` tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install example demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==24.3.1
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	touch $@

# Build the example model and its data splits with DVC (offline), and store them in the
# local DVC remote so `dvc pull` restores them.
example: install
	@test -d .dvc || { echo "no .dvc folder: run from the repository root" >&2; exit 2; }
	$(BIN)/dvc repro
	$(BIN)/dvc push --quiet

demo: example
	@start=$$(date +%s); \
	$(BIN)/edgeproof run --params params.yaml; rc=$$?; \
	echo "make demo: edgeproof run exited $$rc after $$(( $$(date +%s) - start )) s"; \
	exit $$rc

test: install
	bash .ci/install-actionlint.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf reports mlartifacts mlflow.db .pytest_cache
