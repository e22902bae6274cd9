"""Bad input through the real server: what the API tests cannot see because the Flask test
client is not gunicorn (chunked request bodies, raw HTTP garbage, a worker that must survive)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, proxy_with_fake_backend
from tests.checks import ollama_error, openai_error

from .helpers import only_worker, requests_to

LIMIT = 2048


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ProxyProcess, FakeBackend]]:
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("input"), MAX_BODY_BYTES=str(LIMIT), WEB_CONCURRENCY="1"
    ) as pair:
        yield pair


def big_chat(size: int) -> bytes:
    """A valid chat request of about `size` bytes."""
    message = {"role": "user", "content": "x" * size}
    return json.dumps({"model": "fake-chat", "messages": [message], "stream": False}).encode()


def in_pieces(body: bytes) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_max_body_bytes_is_413_however_it_is_sent(strict, path, framing) -> None:
    proxy, backend = strict
    backend.reset()
    body = big_chat(4 * LIMIT)
    content = body if framing == "content-length" else in_pieces(body)
    with httpx.Client(timeout=10) as http:
        response = http.post(proxy.url + path, content=content)
    if path.startswith("/v1/"):
        message = openai_error(response, 413)["message"]
    else:
        message = ollama_error(response, 413)
    assert str(LIMIT) in message
    # Above all, no truncated request may reach the backend.
    assert requests_to(backend, "/v1/chat/completions") == 0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_under_the_limit_works_however_it_is_sent(strict, framing) -> None:
    proxy, _ = strict
    body = big_chat(LIMIT // 2)
    content = body if framing == "content-length" else in_pieces(body)
    with httpx.Client(timeout=10) as http:
        response = http.post(proxy.url + "/api/chat", content=content)
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"].startswith("echo: xxx")


def test_deeply_nested_json_is_400_and_the_worker_survives(start_proxy) -> None:
    # A recursion in a greenlet must not take the worker (and every stream on it) down.
    with FakeBackend() as backend:
        proxy = start_proxy(
            OPENAI_API_BASE_URL=backend.url, MAX_BODY_BYTES=str(2**20), WEB_CONCURRENCY="1"
        )
        worker = only_worker(proxy).pid
        for depth in (900, 5_000, 200_000):
            nested = b"[" * depth + b"]" * depth
            for opening, closing in (
                (b'"messages": ', b""),
                (b'"messages": [{"role": "user", "content": ', b"}]"),
                (b'"options": {"stop": ', b"}"),
            ):
                body = b'{"model": "fake-chat", ' + opening + nested + closing + b"}"
                if depth < 990:  # the body is well-formed JSON, only deep
                    json.loads(body)
                response = httpx.post(proxy.url + "/api/chat", content=body, timeout=10)
                assert "invalid JSON in request body: Expecting" not in ollama_error(response, 400)
            # Nesting where a JSON schema may nest: fine while the parser copes, else a 400.
            say = b'"messages": [{"role": "user", "content": "hi"}], "stream": false'
            body = b'{"model": "fake-chat", ' + say + b', "format": {"a": ' + nested + b"}}"
            response = httpx.post(proxy.url + "/api/chat", content=body, timeout=10)
            assert response.status_code in (200, 400), (depth, response.text[:200])
        assert httpx.get(proxy.url + "/", timeout=5).text == "Ollama is running"
        assert only_worker(proxy).pid == worker


def raw_exchange(proxy: ProxyProcess, request: bytes) -> bytes:
    """Sends raw bytes and reads the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /api/\xff\xfe HTTP/1.1",  # raw non-UTF-8 bytes in the target
        b"GET /api/%ff%fe HTTP/1.1",  # the same, percent-encoded
        b"GET /" + b"a" * 5000 + b" HTTP/1.1",
        b"G@T / HTTP/1.1",
        b"POST /api/chat HTTP/1.1\r\nContent-Length: abc",
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000,
    ],
    ids=["raw-bytes", "encoded-bytes", "long-line", "bad-method", "bad-length", "big-header"],
)
def test_http_level_garbage_is_a_4xx_and_never_hangs(strict, request_line) -> None:
    proxy, _ = strict
    answer = raw_exchange(proxy, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert httpx.get(proxy.url + "/", timeout=5).status_code == 200  # the worker is fine
