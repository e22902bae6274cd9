# The two commands of the README contract: `make run` and `make test`. Both set up what they
# need on a fresh machine (Python >= 3.11 with venv is the only prerequisite).

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: run test lint types pytest e2e bench e2e-real clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Stamps re-run pip only when a requirements file changed.
$(VENV)/.stamp-runtime: requirements.txt | $(BIN)/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.stamp-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) install -r requirements-dev.txt
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

# The Ollama-SDK conformance suite against real llama.cpp servers with SmolLM2-135M: the
# llama-cpp-python server and llama.cpp's own llama-server, each behind the proxy once with no
# BACKEND_FLAVOUR (what a user gets by setting only the URL) and once with its own flavour.
# Not part of `make test`: the first run compiles both servers (~15 min on 2 cores, cached).
# llama-server has no flavour of its own yet: when the proxy gets one, this becomes
# `llama-server`.
E2E_LLAMA_SERVER_FLAVOUR ?= generic
E2E_REAL_RUNS ?= llama-cpp-python:default llama-cpp-python:llamacpp \
	llama-server:default llama-server:$(E2E_LLAMA_SERVER_FLAVOUR)
e2e-real: $(VENV)/.stamp-dev
	E2E_REAL_RUNS="$(E2E_REAL_RUNS)" tests/e2e_real/matrix.sh \
		$(BIN)/pytest tests/e2e/test_conformance.py -p no:cacheprovider -v

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
