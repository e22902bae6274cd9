"""gunicorn settings, read by the master before it forks the gevent workers.

gevent patches only inside the workers, so this file imports nothing that pulls in ssl users
(requests, urllib3) or the app's blueprints (stack.md §2, §4).
"""

import os
import sys

from dotenv import load_dotenv

# Before anything reads the environment; real variables win over the file. PROXY_ENV_FILE
# names another file (the test suites point it away from a developer's .env).
load_dotenv(os.environ.get("PROXY_ENV_FILE", ".env"))

from app.config import ConfigError, Settings  # noqa: E402  stdlib-only module

try:
    settings = Settings.from_env()
except ConfigError as exc:  # fail once, clearly, in the master instead of in every worker
    sys.exit(f"configuration error: {exc}")

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
accesslog = "-"
# No %(u)s (it decodes a Basic-auth user from Authorization) and the path without its query
# string (some clients put keys there): secrets stay out of the access log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = settings.log_level.lower()
