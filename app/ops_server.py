"""The operations port, served by gunicorn's master: `/metrics` for Prometheus and `/health`
for liveness probes.

The master is a plain process (gevent patches only the workers), so this is a small threaded
HTTP server. It never touches a worker: a scrape works, and liveness answers, when every worker
connection is taken by streams or a worker is busy. A worker that stops serving is the master's
to replace (gunicorn's heartbeat timeout), which is why liveness belongs here.

Bounded: at most MAX_CONNECTIONS served at once (more are closed at once, not queued on
threads), and each connection has IO_TIMEOUT seconds per read or write, so idle or slow
scrapers cannot grow the master. Standard library and prometheus_client only: this runs in the
master, which must not import the app's request path.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 8
IO_TIMEOUT = 5.0
HEALTH = json.dumps({"status": "ok"}, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    server: OpsServer
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles on a thread
    timeout = IO_TIMEOUT

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        path = self.path.partition("?")[0]
        if path == "/metrics":
            body, content_type = generate_latest(self.server.registry), CONTENT_TYPE_LATEST
            status = 200
        elif path == "/health":
            body, content_type, status = HEALTH, "application/json", 200
        else:
            body, content_type, status = b'{"error":"not found"}', "application/json", 404
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes and probes every few seconds are not worth a log line each


class OpsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int]) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # busy: a scraper retries at its next interval
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def start(host: str, port: int) -> OpsServer:
    """Serves the operations port on a daemon thread of the calling (master) process."""
    server = OpsServer((host, port))
    thread = threading.Thread(target=server.serve_forever, name="ops-server", daemon=True)
    thread.start()
    return server
