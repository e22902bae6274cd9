# The two commands of the README contract: `make run` and `make test`. Both set up what they
# need on a fresh machine (Python >= 3.11 with venv is the only prerequisite).

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# What is installed is the lock, never the ranges: every file is checked against its hash, and
# only wheels are taken, so nothing downloaded runs a build script on this machine.
PIP_INSTALL_LOCK := $(PIP) install --require-hashes --no-deps --only-binary=:all: -r

# One lock for every supported Python (3.11-3.13) and platform: the same file serves `make run`,
# `make test`, the image and CI's whole version matrix.
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"

IMAGE ?= ollama-proxy:dev
# Empty: the Dockerfile's own default base (python:3.12-slim).
BASE_IMAGE ?=
# docker, or buildah; empty: docker where an engine answers, buildah otherwise.
IMAGE_BUILDER ?=
# Behind a TLS-intercepting proxy, pip in the build needs the CA bundle this machine trusts. It is
# handed over as a build secret: mounted for the one RUN that needs it, never stored in a layer.
PIP_CERT ?=
comma := ,
IMAGE_FLAGS = $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	$(if $(PIP_CERT),--secret id=pip-ca$(comma)src=$(PIP_CERT))

.PHONY: run test lint types pytest e2e bench e2e-real lock lock-upgrade audit image image-test clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Stamps re-run pip only when a lock changed.
$(VENV)/.stamp-runtime: requirements.lock | $(BIN)/python
	$(PIP_INSTALL_LOCK) requirements.lock
	@touch $@

$(VENV)/.stamp-dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(PIP_INSTALL_LOCK) requirements-dev.lock
	@touch $@ $(VENV)/.stamp-runtime

# gunicorn.conf.py reads .env (if present); variables given on the command line win.
run: $(VENV)/.stamp-runtime
	exec $(BIN)/gunicorn -c gunicorn.conf.py

test: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest --cov=app --cov-report=term

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

types: $(VENV)/.stamp-dev
	$(BIN)/mypy

# Fast loop while developing: everything but the end-to-end suite.
pytest: $(VENV)/.stamp-dev
	$(BIN)/pytest -m "not e2e"

e2e: $(VENV)/.stamp-dev
	$(BIN)/pytest -m e2e

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m bench

# The conformance suites (the Ollama SDK; the Anthropic and openai SDKs on Messages and
# Responses) against real llama.cpp servers with SmolLM2-135M: the llama-cpp-python server and
# llama.cpp's own llama-server, each behind the proxy once with no BACKEND_FLAVOUR (what a user
# gets by setting only the URL) and once with its own flavour; llama-server once more with
# llama-server-native, which passes Messages and Responses to its own routes.
# Not part of `make test`: the first run compiles both servers (~15 min on 2 cores, cached).
E2E_REAL_RUNS ?= llama-cpp-python:default llama-cpp-python:llama-cpp-python \
	llama-server:default llama-server:llama-server llama-server:llama-server-native
E2E_REAL_TESTS ?= tests/e2e/test_conformance.py tests/e2e/test_api_conformance.py
e2e-real: $(VENV)/.stamp-dev
	E2E_REAL_RUNS="$(E2E_REAL_RUNS)" tests/e2e_real/matrix.sh \
		$(BIN)/pytest $(E2E_REAL_TESTS) -p no:cacheprovider -v

# After editing requirements*.txt: re-resolve, keeping every pin that still fits. The dev lock is
# constrained by the runtime lock, so tests run on exactly the versions the image ships.
lock: $(VENV)/.stamp-dev
	$(UV_COMPILE) requirements.txt -o requirements.lock
	$(UV_COMPILE) requirements-dev.txt -c requirements.lock -o requirements-dev.lock

# Every package to the newest release the ranges allow (then `make test`, and commit the locks).
lock-upgrade: $(VENV)/.stamp-dev
	$(UV_COMPILE) --upgrade requirements.txt -o requirements.lock
	$(UV_COMPILE) --upgrade requirements-dev.txt -c requirements.lock -o requirements-dev.lock

# Known vulnerabilities in the locked versions, from PyPI's JSON API (CI has it; a mirror may
# not). --strict: a package that could not be checked fails the audit instead of passing unseen.
audit: $(VENV)/.stamp-dev
	$(BIN)/pip-audit --strict --progress-spinner off --disable-pip --require-hashes -r requirements.lock
	$(BIN)/pip-audit --strict --progress-spinner off --disable-pip --require-hashes -r requirements-dev.lock

# `--format docker` with buildah: the OCI format has no HEALTHCHECK, and compose uses it.
image:
	@if [ "$(IMAGE_BUILDER)" = docker ] || \
	    { [ -z "$(IMAGE_BUILDER)" ] && docker info >/dev/null 2>&1; }; then \
	  set -x; docker build $(IMAGE_FLAGS) -t $(IMAGE) .; \
	else \
	  set -x; buildah build --isolation chroot --layers --format docker \
	    $(IMAGE_FLAGS) -t $(IMAGE) .; \
	fi

# Builds the image on a local stand-in base (no registry is needed), runs the proxy from it and
# checks it; writes the SBOM. Needs root, buildah and debootstrap; takes minutes the first time.
image-test: $(VENV)/.stamp-dev
	$(BIN)/python -m tests.image

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov build
