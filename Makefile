# Every target installs what it needs first (apt nginx, a .venv with torch's CPU wheel).
# `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help setup demo launch-demo test test-unit test-integration mutate image-test lint format readme new-model bench-train bench-precision bench-serve bench-serverless bench-defaults bench-mme gpu-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

setup: $(STAMP) ## install nginx (apt) and the Python packages into .venv

$(STAMP): requirements.txt requirements-dev.txt
	@# nginx fronts the model server; fortunes is the real text bench-defaults and its test
	@# use; wrk is bench-serve's load generator (its test runs it for a second).
	@command -v nginx >/dev/null && command -v wrk >/dev/null && test -f /usr/share/games/fortunes/computers || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx fortunes wrk >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first, pinned: the CPU wheel. A bare `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==$$(sed -n 's/^torch==//p' requirements.txt)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

demo: $(STAMP) ## train on the sample data, serve it, send predictions (CPU, no Docker; MODEL=NAME)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MODEL="$(MODEL)" bash local_test/demo.sh

launch-demo: $(STAMP) ## the launcher end to end against a local moto server, no AWS account (~30 s)
	$(PY) scripts/launch_demo.py

# The tests run in parallel processes (pytest-xdist): most wait on a subprocess or a
# socket, so 3 keep 2 cores busy. TEST_WORKERS=0 runs them in this one process. Which
# worker takes which test (the tests of a module-scoped fixture on one) and in what order
# (the long ones first): tests/parallel.py.
TEST_WORKERS ?= 3
XDIST = -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP) ## the whole test suite in parallel (unit + integration; TEST_WORKERS=3)
	$(PY) -m pytest $(XDIST)

test-unit: $(STAMP) ## unit tests only (seconds)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP) ## integration tests only, in parallel (TEST_WORKERS=3)
	$(PY) -m pytest $(XDIST) tests/integration

mutate: $(STAMP) ## mutation testing of the limits and checks against tests/unit (MUTATE=codecs, MUTATE_MINUTES=40)
	@# mutmut: a one-line change to each line of the chosen modules, the unit tests that
	@# reach it run against it; prints killed/checked per module and what survived.
	$(PY) scripts/mutate.py $(MUTATE)

image-test: ## build both images (GPU, CPU) with podman and run train/serve in containers
	@# Installs podman, runc and debootstrap (apt) when missing; no .venv needed. Skips,
	@# with a banner saying why, where podman cannot run containers. tests/image/run.py.
	$(PYTHON) tests/image/run.py

lint: $(STAMP) ## ruff, hadolint and shellcheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck $$(git ls-files '*.sh' .ci/run)

format: $(STAMP) ## apply ruff's fixes and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-train: $(STAMP) ## training samples/s: the train entry point vs a bare PyTorch loop
	$(PY) benchmarks/bench_train.py

bench-precision: $(STAMP) ## training in fp32 vs bf16-mixed: speed, sample jobs, real text (~40 min CPU)
	@test -f /usr/share/games/fortunes/computers || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fortunes >/dev/null; }
	$(PY) benchmarks/bench_train.py --compare-precision --threads 1,2 \
		--plugins text_classifier,tabular,image_classifier --real-text --seeds 42,7

bench-serve: $(STAMP) ## serving throughput, latency and cold start through nginx (wrk)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) benchmarks/bench_serve.py

bench-mme: $(STAMP) ## a multi-model endpoint: cold loads, memory per model, throughput over 10 models (wrk)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) benchmarks/bench_mme.py

bench-serverless: $(STAMP) ## a serverless endpoint's memory (RSS, peak) and start, to choose its size
	$(PY) benchmarks/bench_serverless.py

gpu-check: ## CUDA training (bf16 vs fp32), serving (fp16/bf16), workers per GPU: one table, <5 min (ARGS=...)
	@# No setup: a GPU machine may have torch, lightning and transformers but no .venv, so
	@# this uses .venv's Python where there is one, else python3. Without CUDA it measures
	@# the CPU rows and skips the CUDA ones. ARGS: --json OUT, --seconds N, --backbone DIR.
	$$(test -x $(PY) && echo $(PY) || echo $(PYTHON)) benchmarks/gpu_check.py $(ARGS)

new-model: $(STAMP) ## write a working plug-in skeleton to fill in: make new-model NAME=my_model
	@test -n "$(NAME)" || { echo "usage: make new-model NAME=my_model" >&2; exit 2; }
	$(PY) scripts/new_model.py $(NAME)

readme: $(STAMP) ## regenerate the hyperparameter, serving and helper tables in docs/
	$(PY) scripts/update_readme.py

bench-defaults: $(STAMP) ## default hyperparameters vs a plain fine-tune on real text (~10 min CPU)
	@test -f /usr/share/games/fortunes/computers || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fortunes >/dev/null; }
	$(PY) benchmarks/eval_defaults.py

clean: ## remove the venv, caches and local_test outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis mutants local_test/test_dir local_test/test_dir_*
