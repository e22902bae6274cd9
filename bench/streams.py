"""Long streams against harness/fake_backend.py, which can trickle (nginx cannot).

Memory: N Ollama streams are opened over raw sockets and held (this process only keeps a socket
each, and its memory is not the one measured: the proxy worker's RSS is). Time to first token:
sequential requests against a backend that waits 50 ms before each piece (and one that does not
wait), timed until the first piece of text arrives, directly and through the proxy, interleaved
so drift hits both alike.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from harness.fake_backend import FakeBackend

from . import health
from .proxy import Served

MODEL = "fake-chat"
_CHAT = "/v1/chat/completions"


def _chat(text: str) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": True}
    return json.dumps(body).encode()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def open_streams(proxy: Served, fake: FakeBackend, count: int) -> dict[str, Any]:
    """Worker RSS idle and with `count` streams open, and liveness while they are; everything
    is closed before returning."""
    host, port = _address(proxy.url)
    body = _chat("[[slow:1]] [[long:300]] hold this stream open")
    request = (
        f"POST /api/chat HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle_kb = proxy.rss_kb()
    selector = selectors.DefaultSelector()
    sockets: list[socket.socket] = []
    started = failed = 0
    try:
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(request)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            sockets.append(sock)
        deadline = time.monotonic() + 30 + count / 50
        while started + failed < count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                try:  # headers come once the first piece is through
                    head = key.fileobj.recv(4096)
                except OSError:
                    head = b""
                selector.unregister(key.fileobj)  # from here on the stream is left unread
                if head.startswith(b"HTTP/1.1 200"):
                    started += 1
                else:
                    failed += 1
        time.sleep(1.0)  # let every greenlet settle into its steady state
        with fake.lock:
            at_backend = fake.open_streams
        held_kb = proxy.rss_kb()
        liveness = health.probe(proxy.ops_url + "/health")
    finally:
        selector.close()
        for sock in sockets:
            sock.close()
    closed = _wait_closed(fake, timeout=15)
    return {
        "streams": count,
        "started": started,
        "failed": failed,
        "open_at_backend": at_backend,
        "rss_idle_kb": idle_kb,
        "rss_held_kb": held_kb,
        "kb_per_stream": (held_kb - idle_kb) / count if count else 0.0,
        "rss_after_close_kb": proxy.rss_kb(),
        "all_closed_after": closed,
        "health": liveness,
    }


def _wait_closed(fake: FakeBackend, timeout: float) -> bool:
    """True once the backend sees no stream open: the proxy closed every one it had."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with fake.lock:
            if fake.open_streams == 0:
                return True
        time.sleep(0.1)
    return False


def _has_text(line: bytes, *, sse: bool) -> bool:
    """Whether one line of the answer (SSE from the backend, NDJSON from the proxy) has text."""
    if sse:
        if not line.startswith(b"data: {"):
            return False
        choices = json.loads(line[6:])["choices"]
        return bool(choices and choices[0]["delta"].get("content"))
    return bool(line.strip() and json.loads(line).get("message", {}).get("content"))


def _first_token_ms(url: str, path: str, body: bytes, *, sse: bool) -> float:
    """Milliseconds from sending the request to the first line carrying generated text.

    Each request has a connection of its own, made before the clock starts, and closed once the
    first text is in (the rest would take 50 ms a piece). The proxy then cannot pool its backend
    connection of a paced stream, so each paced request through it pays a backend connect.
    """
    conn = http.client.HTTPConnection(*_address(url), timeout=10)
    try:
        conn.connect()
        start = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        while line := response.readline():
            if _has_text(line, sse=sse):
                return (time.perf_counter() - start) * 1000
        raise RuntimeError(f"{path}: the stream ended before any text")
    finally:
        conn.close()


def first_token(proxy: Served, fake: FakeBackend, requests: int, pace: float) -> dict[str, Any]:
    """p50 time to the first piece of text, backend alone and through the proxy, when the
    backend waits `pace` seconds before each piece."""
    text = f"[[slow:{pace:g}]] how soon does the first word arrive?"
    body = _chat(text)  # valid as an Ollama and as an OpenAI request alike
    backend = fake.url.removesuffix("/v1")
    for _ in range(3):  # warm-up: the proxy's backend pool, the model list cache
        _first_token_ms(proxy.url, "/api/chat", body, sse=False)
    direct, proxied = [], []
    for _ in range(requests):
        direct.append(_first_token_ms(backend, _CHAT, body, sse=True))
        proxied.append(_first_token_ms(proxy.url, "/api/chat", body, sse=False))
    _wait_closed(fake, timeout=5)
    return {
        "pace_ms": pace * 1000,
        "requests": requests,
        "direct_p50_ms": statistics.median(direct),
        "proxy_p50_ms": statistics.median(proxied),
        "added_p50_paired_ms": statistics.median(
            p - d for p, d in zip(proxied, direct, strict=True)
        ),
    }
