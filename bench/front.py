"""nginx in front of the proxy, as deployed: deploy/nginx's site template, rendered and run the
way the end-to-end suite does it (tests/nginx_process.py), with its access log to a file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from tests.nginx_process import Nginx, render

from .tools import free_port

MAX_BODY_BYTES = str(64 * 2**20)  # the proxy's default, which nginx must match


@dataclass
class Front:
    url: str
    worker: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.worker.cpu_times()
        return float(times.user + times.system)


@contextlib.contextmanager
def running(workdir: Path, upstream_url: str) -> Iterator[Front]:
    """nginx on a port of its own, proxying to `upstream_url` (http://127.0.0.1:PORT)."""
    home = workdir / "front-nginx"
    home.mkdir(exist_ok=True)
    port = free_port()
    values = {
        "NGINX_PORT": f"127.0.0.1:{port}",
        "OLLAMA_PROXY_UPSTREAM": urlsplit(upstream_url).netloc,
        "MAX_BODY_BYTES": MAX_BODY_BYTES,
        "NGINX_ACCESS_LOG": str(home / "access.log"),
    }
    server = Nginx(home, render(values), port).start()
    try:
        master = int((home / "nginx.pid").read_text())
        yield Front(server.url, psutil.Process(master).children()[0])  # worker_processes 1
    finally:
        server.stop()
