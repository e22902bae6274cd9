"""gunicorn settings, read by the master before it forks the gevent workers.

gevent patches only inside the workers, so this file imports nothing that pulls in ssl users
(requests, urllib3) or the app's blueprints (docs/stack.md, "gevent patching order").

Metrics (docs/stack.md, "Prometheus in multiprocess mode"): every worker writes its values to
files in PROMETHEUS_MULTIPROC_DIR; the master serves their sum on METRICS_PORT, wipes the files
when it starts, and drops a dead worker's live gauges (in-flight streams, breaker state,
process stats) when it exits.
"""

import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from dotenv import load_dotenv

# Before anything reads the environment; real variables win over the file. PROXY_ENV_FILE
# names another file (the test suites point it away from a developer's .env).
load_dotenv(os.environ.get("PROXY_ENV_FILE", ".env"))

from app.config import ConfigError, load_in_master  # noqa: E402  stdlib-only module

try:
    # Read again on every SIGHUP: a file made invalid since is reported, and not applied.
    settings, reload_error = load_in_master(os.environ)
except ConfigError as exc:  # fail once, clearly, in the master instead of in every worker
    sys.exit(f"configuration error: {exc}")
if reload_error is not None:
    logging.getLogger("gunicorn.error").error("configuration error on reload: %s", reload_error)

# prometheus_client picks in-process or file-backed values when it is first imported, so the
# directory must be in the environment before any import below. Without one configured, a
# fresh directory on tmpfs serves this run and is removed at exit.
_OWN_METRICS_DIR = "ollama-proxy-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _shm = "/dev/shm"  # noqa: S108  memory-backed, like the emptyDir Kubernetes would mount
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=_OWN_METRICS_DIR, dir=_shm if os.path.isdir(_shm) else None
    )
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
os.makedirs(METRICS_DIR, exist_ok=True)

from prometheus_client import multiprocess  # noqa: E402

from app import ops_server  # noqa: E402  stdlib and prometheus_client only
from app.logconfig import logging_config  # noqa: E402  stdlib only

wsgi_app = "wsgi:app"
bind = [f"[{settings.host}]:{settings.port}" if ":" in settings.host else
        f"{settings.host}:{settings.port}"]  # fmt: skip
worker_class = "app.worker.ProxyWorker"  # gevent, minus waiting for idle clients at shutdown
# One gevent worker saturates a core; os.sched_getaffinity respects CPU pinning (cgroups).
workers = int(os.environ.get("WEB_CONCURRENCY") or len(os.sched_getaffinity(0)))
worker_connections = settings.pool_size
timeout = 30  # a heartbeat under gevent, not a request limit: long streams are fine
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "60"))
keepalive = 75  # longer than nginx's upstream keepalive_timeout (60 s), or it sees resets
max_requests = 0  # recycling a worker cuts its streams
preload_app = False  # the app must be imported after gevent patched the worker
control_socket_disable = True  # no writable $HOME in the container
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  heartbeat file on tmpfs
# The access line is JSON fields built by app.worker.ProxyLogger: method, path without its query
# string (keys can hide there), status, bytes, duration, request ID, model, tokens; never the
# request's headers or the Basic-auth user name (%(u)s).
accesslog = "-"
logger_class = "app.worker.ProxyLogger"
errorlog = "-"
loglevel = settings.log_level.lower()
# One JSON object per line on stdout, for gunicorn's own lines, the access log and the app.
logconfig_dict = logging_config(settings.log_level)
logging.captureWarnings(True)  # a warning is a JSON line too, not stray text on stderr


def _remove_own_metrics_dir() -> None:
    if os.path.basename(METRICS_DIR).startswith(_OWN_METRICS_DIR):
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


def on_starting(server: Any) -> None:
    # Once per master start, not on a reload (SIGHUP), which would delete live workers' values.
    # Files, not the directory: it is often a mount point (emptyDir).
    for name in os.listdir(METRICS_DIR):
        if name.endswith(".db"):
            os.remove(os.path.join(METRICS_DIR, name))


def when_ready(server: Any) -> None:
    # The same interface as the proxy: 0.0.0.0 in a container (Prometheus scrapes the pod's
    # IP), loopback when the proxy itself is kept local. /metrics and /health, without auth.
    try:
        ops_server.start(settings.host, settings.metrics_port)
    except OSError as exc:
        _remove_own_metrics_dir()
        raise RuntimeError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc}"
        ) from None
    server.log.info("Serving metrics and liveness at %s:%d", settings.host, settings.metrics_port)


def post_worker_init(worker: Any) -> None:
    # Runs in the worker after gevent patched it: the sampler's thread is a greenlet.
    from app.procstats import start_process_sampler  # noqa: PLC0415  not in the master

    start_process_sampler()


def child_exit(server: Any, worker: Any) -> None:
    # Live gauges (streams in flight, breaker state, process stats) must not outlive the worker.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    _remove_own_metrics_dir()
