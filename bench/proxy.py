"""The proxy under test: the real gunicorn with its gevent workers, and those workers' counters.

`Served` reads any gunicorn master's workers, so the floor apps (bench/floor.py) are measured
by the same code as the proxy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from harness.proxy_process import ProxyProcess


class Served:
    """A gunicorn master serving at `url` with `workers` workers."""

    def __init__(self, url: str, master: int, workers: int = 1, ops_url: str = "") -> None:
        self.url = url
        self.ops_url = ops_url  # the operations port (metrics, liveness), if it has one
        self.workers = self._find_workers(master, workers)
        self.worker = self.workers[0]  # the one whose memory and syscalls are read

    @staticmethod
    def _find_workers(master: int, count: int) -> list[psutil.Process]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children: list[psutil.Process] = psutil.Process(master).children()
            if len(children) == count:
                return children
            time.sleep(0.05)
        raise RuntimeError(f"expected exactly {count} gunicorn worker(s)")

    def cpu_seconds(self) -> float:
        """User + system time of every worker (the master only supervises: not counted)."""
        total = 0.0
        for worker in self.workers:
            times = worker.cpu_times()
            total += times.user + times.system
        return total

    def rss_kb(self) -> float:
        return float(self.worker.memory_info().rss) / 1024


@contextlib.contextmanager
def running(
    workdir: Path, name: str, backend_url: str, *, workers: int = 1, **env: str
) -> Iterator[Served]:
    """One gunicorn master with `workers` gevent workers in front of `backend_url` (…/v1)."""
    settings = {
        "OPENAI_API_BASE_URL": backend_url,
        "WEB_CONCURRENCY": str(workers),  # the design's unit of measure is one worker
        "LOG_LEVEL": "INFO",  # the default: the access line is part of the real cost
        **env,
    }
    process = ProxyProcess(workdir / f"proxy-{name}.log", settings)
    process.start()
    try:
        ops_url = process.metrics_url.removesuffix("/metrics")
        yield Served(process.url, process.pid, workers, ops_url)
    finally:
        process.stop()
