"""deploy/nginx/ in front of a real gunicorn: streams, request IDs, body limit, keep-alive, SIGTERM.

nginx is Debian's (`nginx-light`); `.ci/run` installs it. Without it these tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import psutil
import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, free_port, proxy_with_fake_backend
from tests.checks import ollama_error, openai_error
from tests.nginx_process import Nginx, nginx_binary, render

from .helpers import chat, events, requests_to, wait_for

pytestmark = pytest.mark.skipif(
    nginx_binary() is None,
    reason="nginx is not installed (Debian package nginx-light; .ci/run installs it)",
)

LIMIT = 64 * 2**20  # the proxy's default MAX_BODY_BYTES, which nginx must match
SLOW = "[[slow:0.2]] one two three four five six"  # 8 pieces, 0.2 s apart


def start_nginx(workdir: Path, proxy: ProxyProcess, site: str | None = None) -> Nginx:
    port = free_port()
    values = {
        "NGINX_PORT": f"127.0.0.1:{port}",
        "OLLAMA_PROXY_UPSTREAM": f"127.0.0.1:{proxy.port}",
        "MAX_BODY_BYTES": str(LIMIT),
        "NGINX_ACCESS_LOG": str(workdir / "access.log"),
    }
    return Nginx(workdir, render(values, site), port).start()


@pytest.fixture(scope="module")
def behind_nginx(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Nginx, ProxyProcess, FakeBackend]]:
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("proxy"), MAX_BODY_BYTES=str(LIMIT), WEB_CONCURRENCY="1"
    ) as (proxy, backend):
        nginx = start_nginx(tmp_path_factory.mktemp("nginx"), proxy)
        try:
            yield nginx, proxy, backend
        finally:
            nginx.stop()


def arrival_times(kind: str, url: str) -> list[float]:
    """Seconds from sending a slow streamed chat to each piece's arrival, read by the SDK."""
    messages = [{"role": "user", "content": SLOW}]
    started = time.monotonic()
    times = []
    if kind == "ollama":
        with ollama.Client(host=url, timeout=30) as client:
            for _part in client.chat("fake-chat", messages=messages, stream=True):
                times.append(time.monotonic() - started)
    else:
        with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
            for _chunk in client.chat.completions.create(
                model="fake-chat", messages=messages, stream=True
            ):
                times.append(time.monotonic() - started)
    return times


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_a_slow_stream_arrives_piece_by_piece(behind_nginx, kind) -> None:
    nginx, _, _ = behind_nginx
    times = arrival_times(kind, nginx.url)
    assert len(times) >= 8
    # Buffered, every piece would arrive together at the end.
    assert times[0] < times[-1] / 2, times


def test_a_client_that_hangs_up_stops_the_generation(behind_nginx) -> None:
    nginx, _, backend = behind_nginx
    backend.reset()
    body = chat("[[slow:0.1]] [[long:300]]", stream=True)  # 30 s unless stopped
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", nginx.url + "/api/chat", json=body) as response,
    ):
        for number, _line in enumerate(response.iter_lines()):
            if number == 3:
                break  # closing the response hangs up on nginx mid-stream
    # nginx passed the hang-up on, and the proxy closed the backend's stream.
    assert wait_for(lambda: events(backend, "client_closed"), 10), backend.events


def proxy_access_line(proxy: ProxyProcess, request_id: str) -> dict[str, object] | None:
    for line in proxy.logs().splitlines():
        if line.startswith("{") and f'"request_id":"{request_id}"' in line:
            record = json.loads(line)
            if record.get("logger") == "gunicorn.access":
                return record
    return None


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("client-id_1.2", True), (None, False), ("not a valid id!", False)],
    ids=["valid", "absent", "invalid"],
)
def test_request_ids_round_trip(behind_nginx, sent, kept) -> None:
    nginx, proxy, _ = behind_nginx
    headers = {"X-Request-ID": sent} if sent else {}
    response = httpx.post(nginx.url + "/api/chat", json=chat("hello"), headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    if kept:
        assert request_id == sent
    else:  # made by nginx: its $request_id, 32 hex digits
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    # The same ID in nginx's log and the proxy's: one grep finds the request in both.
    assert wait_for(lambda: proxy_access_line(proxy, request_id), 5), proxy.logs()[-2000:]
    assert wait_for(lambda: request_id in [ln["request_id"] for ln in nginx.access_lines()], 5)


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_an_oversized_body_gets_the_proxys_413_not_nginx_html(behind_nginx, path) -> None:
    nginx, proxy, backend = behind_nginx
    backend.reset()
    body = b'{"model":"fake-chat","messages":[{"role":"user","content":"'
    body += b"x" * (LIMIT - len(body) - 3) + b'"}]}'
    assert len(body) == LIMIT + 1
    with httpx.Client(timeout=60) as http:
        through_nginx = http.post(nginx.url + path, content=body)
    direct = header_only_post(proxy.port, path, len(body))
    if path.startswith("/v1/"):
        openai_error(through_nginx, 413)
    else:
        ollama_error(through_nginx, 413)
    assert through_nginx.json() == direct, "nginx's 413 must read as the proxy's own"
    assert "x-request-id" in through_nginx.headers
    assert requests_to(backend, "/v1/chat/completions") == 0


def header_only_post(port: int, path: str, length: int) -> object:
    """The proxy's own answer to a body of `length` bytes, judged by Content-Length alone."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    return json.loads(payload)


def test_the_client_address_reaches_the_access_line_but_not_the_backend(behind_nginx) -> None:
    nginx, proxy, backend = behind_nginx
    backend.reset()
    # A client on another loopback address than nginx's own, so the two cannot be confused.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10) as http:
        response = http.get(nginx.url + "/v1/models")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]

    def access_line() -> dict[str, object] | None:
        for line in proxy.logs().splitlines():
            if line.startswith("{") and request_id in line and '"gunicorn.access"' in line:
                parsed: dict[str, object] = json.loads(line)
                return parsed
        return None

    line = wait_for(access_line, 5.0)
    assert line is not None
    assert line["remote_addr"] == "127.0.0.2"  # nginx is a trusted forwarder (127.0.0.1)
    with backend.lock:
        seen = backend.requests[-1]["headers"]
    # The backend gets what describes the request, not who sent it.
    assert "x-forwarded-for" not in seen
    assert "x-real-ip" not in seen


def upstream_client_ports(proxy_port: int) -> set[int]:
    """The nginx-side ports of every TCP connection to the proxy, TIME_WAIT included."""
    ports = set()
    for conn in psutil.net_connections("tcp4"):
        if not conn.raddr:
            continue
        if conn.raddr.port == proxy_port:
            ports.add(conn.laddr.port)
        elif conn.laddr.port == proxy_port:
            ports.add(conn.raddr.port)
    return ports


def test_nginx_keeps_its_connections_to_the_proxy_alive(behind_nginx) -> None:
    nginx, proxy, _ = behind_nginx
    before = upstream_client_ports(proxy.port)
    for _ in range(20):  # a new client connection each time: only the upstream side is reused
        assert httpx.get(nginx.url + "/api/version", timeout=10).status_code == 200
    new = upstream_client_ports(proxy.port) - before
    assert len(new) <= 1, f"{len(new)} upstream connections for 20 requests"


def test_the_metrics_are_not_served_through_nginx(behind_nginx) -> None:
    nginx, proxy, _ = behind_nginx
    assert "proxy_streams_in_flight" in httpx.get(proxy.metrics_url, timeout=10).text
    response = httpx.get(nginx.url + "/metrics", timeout=10)
    assert ollama_error(response, 404)
    assert "proxy_" not in response.text


def test_sigterm_behind_nginx_ends_open_streams_with_an_error_line(tmp_path) -> None:
    with proxy_with_fake_backend(tmp_path, GRACEFUL_TIMEOUT="2", WEB_CONCURRENCY="1") as (
        proxy,
        _,
    ):
        nginx = start_nginx(tmp_path, proxy)
        try:
            lines = []
            with httpx.Client(timeout=30) as http:
                body = chat("[[slow:0.1]] [[long:300]]", stream=True)  # 30 s unless cut
                with http.stream("POST", nginx.url + "/api/chat", json=body) as response:
                    assert response.status_code == 200
                    for line in response.iter_lines():
                        lines.append(json.loads(line))
                        if len(lines) == 3:
                            proxy.send_signal(signal.SIGTERM)
                assert proxy.wait(15) == 0
                # With the proxy gone, nginx still answers in Ollama's shape.
                after = http.post(nginx.url + "/api/chat", json=chat("anyone?"))
        finally:
            nginx.stop()
    # The cut stream ended cleanly (no transport error above) with an error line, and never
    # with a done:true that would pass a cut-off answer for a whole one.
    assert "error" in lines[-1], lines[-1]
    assert not any(line.get("done") for line in lines)
    assert "not answering" in ollama_error(after, 502)
