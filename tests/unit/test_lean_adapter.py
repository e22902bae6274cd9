"""The backend exchange without requests' per-call extras: pooled connections a backend closed
are still never reused, answers keep every header, a body that breaks off is the backend's
failure and never a reason to send the request again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from app.backend import Backend
from app.config import Settings
from app.errors import BackendError
from app.lean_adapter import LeanAdapter

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Set-Cookie: a=1\r\nVary: Accept\r\nVary: Origin\r\n\r\n{}"
)


class ClosingServer:
    """Answers each request on a keep-alive connection, then closes that connection after
    `linger` seconds, as a backend with a short idle timeout does (uvicorn: 5 s)."""

    def __init__(self, linger: float = 0.05) -> None:
        self.linger = linger
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(self.linger)  # idle longer than this between requests: closed
        with conn:
            while True:
                request = b""
                try:
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        request += chunk
                except TimeoutError:
                    return
                conn.sendall(ANSWER)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def server() -> Iterator[ClosingServer]:
    running = ClosingServer()
    yield running
    running.close()


def stale_retries() -> float:
    labels = {"backend": "default", "kind": "stale_connection"}
    return REGISTRY.get_sample_value("proxy_backend_retries_total", labels) or 0.0


def test_a_connection_the_backend_closed_while_idle_is_not_reused(server: ClosingServer) -> None:
    backend = Backend(Settings(backend_url=server.url, max_retries=0))
    before = stale_retries()
    for _ in range(3):
        assert backend.send("GET", "/models").status_code == 200
        time.sleep(0.2)  # the server has closed the connection by now
    assert server.accepted == 3  # a fresh connection each time
    assert stale_retries() == before  # found closed before use, not by failing on it


def test_a_connection_still_open_is_reused() -> None:
    server = ClosingServer(linger=5)
    try:
        backend = Backend(Settings(backend_url=server.url, max_retries=0, request_timeout=5))
        for _ in range(2):  # a body, then none: each request's head is sent when it is whole
            assert backend.send("POST", "/chat/completions", b"{}").content == b"{}"
            assert backend.send("GET", "/models").content == b"{}"
        assert server.accepted == 1
    finally:
        server.close()


def test_answers_keep_every_header_and_fill_no_cookie_jar(server: ClosingServer) -> None:
    response = Backend(Settings(backend_url=server.url)).send("GET", "/models?x=1")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Vary"] == "Accept, Origin"  # merged, as requests does
    assert response.url == server.url + "/models?x=1"
    assert not response.cookies


def test_the_path_sent_is_the_requests_own_and_other_origins_take_requests_way() -> None:
    adapter = LeanAdapter("http://backend.test:8000/v1")
    own = requests.Request("POST", "http://backend.test:8000/v1/x/y?a=b%20c").prepare()
    other = requests.Request("GET", "http://other.test/v1/models?q=1").prepare()
    assert adapter.request_url(own, {}) == "/v1/x/y?a=b%20c"
    assert adapter.request_url(other, {}) == "/v1/models?q=1"
    pool = adapter.get_connection_with_tls_context(own, True)
    assert adapter.get_connection_with_tls_context(own, True) is pool  # looked up once
    assert adapter.get_connection_with_tls_context(other, True) is not pool


class BrokenBody:
    """urllib3's response as far as _read_whole uses it, failing at the first read."""

    def __init__(self, error: Exception, length: int | None) -> None:
        self.error = error
        self.closed = False
        self.length_remaining = length  # None: chunked, read in pieces
        self.headers: dict[str, str] = {}

    def read(self, amt: int | None = None, **_: Any) -> bytes:
        raise self.error

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (ProtocolError("Connection broken: IncompleteRead"), 502, "broke off its answer"),
        (ReadTimeoutError(None, "/", "read timed out"), 504, "did not answer within 300s"),
        (ConnectionResetError(104, "reset"), 502, "broke off its answer"),
    ],
)
@pytest.mark.parametrize("length", [100, None])
def test_a_body_that_breaks_off_is_a_failure_never_a_failover(
    error: Exception, status: int, message: str, length: int | None
) -> None:
    backend = Backend(Settings(backend_url="http://backend.test/v1"))
    response = requests.Response()
    response.raw = BrokenBody(error, length)
    with pytest.raises(BackendError) as caught:
        backend._read_whole(response, 300)
    assert caught.value.status == status
    assert message in caught.value.message
    assert not caught.value.failover  # the backend may have done the work: not sent again
    assert response.raw.closed


def test_headers_of_urllib3_merge_like_requests() -> None:
    adapter = LeanAdapter("http://backend.test/v1")

    class Raw:
        status, reason = 200, "OK"
        headers = HTTPHeaderDict([("Vary", "a"), ("vary", "b")])

    prepared = requests.Request("GET", "http://backend.test/v1/models").prepare()
    assert adapter.build_response(prepared, Raw()).headers["VARY"] == "a, b"
