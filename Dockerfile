# syntax=docker/dockerfile:1
# Two stages: dependencies are installed into a venv without pip, then copied into a slim
# runtime image that runs as a non-root user.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --without-pip /opt/venv
COPY requirements.txt .
RUN pip --python /opt/venv/bin/python install --no-compile -r requirements.txt

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH="/opt/venv/bin:$PATH" \
    PROXY_HOST=0.0.0.0 PROXY_PORT=11434
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin proxy
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY app/ app/
COPY wsgi.py gunicorn.conf.py ./
USER 10001
# 9100: Prometheus metrics (METRICS_PORT), served by gunicorn's master; keep it cluster-internal.
EXPOSE 11434 9100
# Kubernetes uses its own probes; this serves `docker run` and compose.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:11434/health', timeout=2)"]
# exec form: gunicorn is PID 1 and receives SIGTERM for a graceful shutdown.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
