# syntax=docker/dockerfile:1
# The base is an argument: `make image-test` builds on a local stand-in where no registry is
# reachable. Its default is the stage below, whose FROM line names python:3.12-slim outright:
# Dependabot reads FROM lines, not ARG defaults. Both stages after it must use the same base,
# because the venv runs the base's interpreter. An unused stage is not pulled.
ARG BASE_IMAGE=default-base
FROM python:3.12-slim AS default-base

# Dependencies are installed into a venv here, then the venv alone is copied into the runtime
# stage: pip and its caches stay behind.
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
COPY requirements.lock /tmp/requirements.lock
# The lock only, every file checked against its hash, wheels only (no build script runs, no
# compiler is needed). Bytecode is compiled here because the root filesystem is read-only at run
# time: without it every worker would compile its imports in memory at each start. The secret is
# a CA bundle for builds behind a TLS-intercepting proxy (see the Makefile); absent, pip's own.
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --require-hashes --no-deps --only-binary=:all: \
      -r /tmp/requirements.lock \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools

FROM ${BASE_IMAGE}
# No pip in what runs: bases that ship one (python:*-slim) lose it here.
RUN if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall --yes pip; fi \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ollama-proxy
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY app/ app/
COPY wsgi.py gunicorn.conf.py ./
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only. PROMETHEUS_MULTIPROC_DIR is left
# unset: gunicorn then uses a fresh directory in /dev/shm (tmpfs in every container runtime);
# Kubernetes and compose point it at a tmpfs of their own.
ENV PATH="/opt/venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PROXY_HOST=0.0.0.0 PROXY_PORT=11434
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 9100: Prometheus metrics (METRICS_PORT), served by gunicorn's master; keep it cluster-internal.
EXPOSE 11434 9100
# Kubernetes uses its own probes; this serves `docker run` and compose.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PROXY_PORT', '11434'), timeout=2)"]
# exec form: gunicorn is PID 1 and receives SIGTERM for a graceful shutdown.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
