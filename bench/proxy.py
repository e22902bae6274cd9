"""The proxy under test: the real gunicorn with one gevent worker, and that worker's counters."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from harness.proxy_process import ProxyProcess


class Proxy:
    def __init__(self, process: ProxyProcess) -> None:
        self.process = process
        self.url = process.url
        self.worker = self._find_worker(process.pid)

    @staticmethod
    def _find_worker(master: int) -> psutil.Process:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = psutil.Process(master).children()
            if len(children) == 1:
                return children[0]
            time.sleep(0.05)
        raise RuntimeError("expected exactly one gunicorn worker (WEB_CONCURRENCY=1)")

    def cpu_seconds(self) -> float:
        times = self.worker.cpu_times()
        return float(times.user + times.system)

    def rss_kb(self) -> float:
        return float(self.worker.memory_info().rss) / 1024


@contextlib.contextmanager
def running(workdir: Path, name: str, backend_url: str, **env: str) -> Iterator[Proxy]:
    """One gunicorn master with one gevent worker in front of `backend_url` (…/v1)."""
    settings = {
        "OPENAI_API_BASE_URL": backend_url,
        "WEB_CONCURRENCY": "1",  # the design's unit of measure: one worker
        "LOG_LEVEL": "INFO",  # the default: the access line is part of the real cost
        **env,
    }
    process = ProxyProcess(workdir / f"proxy-{name}.log", settings)
    process.start()
    try:
        yield Proxy(process)
    finally:
        process.stop()
