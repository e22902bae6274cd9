"""The operations port in the master: metrics, liveness, and nothing a client can grow."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import ops_server


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    running = ops_server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}"
    finally:
        running.shutdown()
        running.server_close()


def test_metrics_and_health_are_served(server: str) -> None:
    metrics = httpx.get(server + "/metrics", timeout=5)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    health = httpx.get(server + "/health", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert httpx.head(server + "/health", timeout=5).content == b""


def test_other_paths_are_not_found(server: str) -> None:
    response = httpx.get(server + "/wp-login.php", timeout=5)
    assert response.status_code == 404


def test_connections_beyond_the_limit_are_closed_not_queued(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    held = [
        socket.create_connection(("127.0.0.1", port)) for _ in range(ops_server.MAX_CONNECTIONS)
    ]
    try:
        extra = socket.create_connection(("127.0.0.1", port), timeout=3)
        extra.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        assert extra.recv(1024) == b""  # closed at once: every slot is taken
        extra.close()
    except ConnectionResetError:
        pass  # closed at once, as a reset
    finally:
        for sock in held:
            sock.close()
    assert httpx.get(server + "/health", timeout=5).status_code == 200
