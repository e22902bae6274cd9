"""Per-worker process statistics from psutil: memory, CPU time, open files and connections.

Multiprocess mode has no process collector (docs/stack.md), so each worker samples itself in
the background; `liveall` gauges keep one series per live worker, labelled by pid, and a dead
worker's series go when gunicorn's master marks it dead.
"""

from __future__ import annotations

import logging
import threading
import time

import psutil
from prometheus_client import Gauge

log = logging.getLogger(__name__)

WORKER_MEMORY = Gauge(
    "proxy_worker_resident_memory_bytes", "Resident memory of a worker", multiprocess_mode="liveall"
)
WORKER_CPU = Gauge(
    "proxy_worker_cpu_seconds",
    "CPU time a worker has used (user + system); use rate() on it",
    multiprocess_mode="liveall",
)
WORKER_FDS = Gauge(
    "proxy_worker_open_fds", "Open file descriptors of a worker", multiprocess_mode="liveall"
)
WORKER_CONNECTIONS = Gauge(
    "proxy_worker_open_connections",
    "Open TCP connections of a worker (clients and backend)",
    multiprocess_mode="liveall",
)
SAMPLE_INTERVAL = 10.0


def sample_process(process: psutil.Process) -> None:
    with process.oneshot():
        cpu = process.cpu_times()
        WORKER_MEMORY.set(process.memory_info().rss)
        WORKER_CPU.set(cpu.user + cpu.system)
        WORKER_FDS.set(process.num_fds())
    WORKER_CONNECTIONS.set(len(process.net_connections(kind="tcp")))


def start_process_sampler(interval: float = SAMPLE_INTERVAL) -> threading.Thread:
    """Samples this process now and then every `interval` seconds, in a daemon thread (a
    greenlet once gevent has patched threading, as in gunicorn's workers)."""
    process = psutil.Process()

    def sample() -> None:
        try:
            sample_process(process)
        except (psutil.Error, OSError) as exc:  # keep serving; say why a value is stale
            log.warning("process sampling failed: %s", exc)

    def loop() -> None:
        while True:
            time.sleep(interval)
            sample()

    sample()
    thread = threading.Thread(target=loop, name="process-sampler", daemon=True)
    thread.start()
    return thread
