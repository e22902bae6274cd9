"""No request may stall its worker, hold its memory, or keep its connection slots: a gevent
worker serves every connection on one thread, so one CPU-bound request or a crowd of slow
clients would black out every other user of the worker. `/health` on the same worker is the
witness: it must keep answering while each attack runs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import psutil

from tests.checks import ollama_error
from tests.e2e.helpers import events, only_worker, wait_for

from .conftest import (
    AUTH,
    CLIENT_KEY,
    CONNECTIONS,
    body_of,
    closed_within,
    read_until_closed,
    status_of,
)

HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}"}


@contextmanager
def health_watch(url: str) -> Iterator[list[float]]:
    """Polls `/health` while the block runs; yields the latencies seen (seconds)."""
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                started = time.monotonic()
                http.get(url + "/health")
                latencies.append(time.monotonic() - started)
                time.sleep(0.02)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield latencies
    finally:
        done.set()
        thread.join()


def post(url: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(url + path, content=body, headers=HEADERS, timeout=60)


def under_watch(url: str, attack: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    with health_watch(url) as latencies:
        time.sleep(0.05)
        response = attack()
        time.sleep(0.05)
    return response, max(latencies)


def test_thousands_of_unmatched_tool_results_do_not_stall_the_worker(target) -> None:
    # The most calls one message may carry, and tens of thousands of results matching none of
    # them, by id and by name: each result used to scan every open call.
    calls = [{"id": f"c{i}", "function": {"name": f"f{i}", "arguments": {}}} for i in range(1000)]
    results = [{"role": "tool", "content": "r", "tool_call_id": f"x{i}"} for i in range(20_000)]
    results += [{"role": "tool", "content": "r", "tool_name": f"g{i}"} for i in range(20_000)]
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": calls}]
    body = json.dumps({"model": "fake-chat", "messages": messages + results, "stream": False})
    response, worst = under_watch(
        target.proxy.url, lambda: post(target.proxy.url, "/api/chat", body.encode())
    )
    assert response.status_code == 200, response.text[:300]
    assert worst < 1.0  # 20,000 results for 20,000 calls took 15 s


def test_a_body_of_millions_of_empty_objects_is_refused_without_building_them(target) -> None:
    count = 20_000_000  # 60 MB, under MAX_BODY_BYTES
    body = b'{"model":"fake-chat","messages":[' + b"{}," * (count - 1) + b"{}]}"
    worker = only_worker(target.proxy)
    before = worker.memory_info().rss
    response, worst = under_watch(
        target.proxy.url, lambda: post(target.proxy.url, "/api/chat", body)
    )
    assert "too complex" in ollama_error(response, 413)
    assert worker.memory_info().rss - before < 300 * 2**20  # was 1.76 GB
    assert worst < 1.0


def test_megabytes_of_list_items_are_bounded_and_cheap(target) -> None:
    cases = [
        (b'{"model":"fake-chat","messages":[' + b"0," * 2_000_000 + b"0]}", "at most 50000"),
        (b'{"model":"fake-chat","prompt":"x","images":[' + b'"",' * 1_000_000 + b'""]}',
         "at most 1000"),
        (b'{"model":"fake-chat","input":[' + b'"a",' * 1_000_000 + b'"a"]}', "at most 16384"),
    ]  # fmt: skip
    paths = ["/api/chat", "/api/generate", "/api/embed"]
    with health_watch(target.proxy.url) as latencies:
        for (body, message), path in zip(cases, paths, strict=True):
            assert message in ollama_error(post(target.proxy.url, path, body), 400)
    assert max(latencies) < 1.0


def test_a_large_context_is_validated_off_the_event_loop(target) -> None:
    # 2 million token ids (4 MB): accepted (Ollama's own ids are ignored), and the worker
    # answers /health meanwhile (was a 7 s stall).
    body = b'{"model":"fake-chat","prompt":"hi","stream":false,"context":[' + b"7," * 2_000_000
    body += b"7]}"
    response, worst = under_watch(
        target.proxy.url, lambda: post(target.proxy.url, "/api/generate", body)
    )
    assert response.status_code == 200, response.text[:300]
    assert worst < 1.0


def test_liveness_answers_when_every_connection_slot_holds_a_stream(target) -> None:
    body = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "[[slow:0.2]] [[long:60]]"}],
    }
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CONNECTIONS)) as http:
        streams = [
            http.stream("POST", target.proxy.url + "/api/chat", json=body, headers=HEADERS)
            for _ in range(CONNECTIONS)
        ]
        opened = [stream.__enter__() for stream in streams]
        try:
            assert wait_for(lambda: target.backend.open_streams == CONNECTIONS, 5.0)
            started = time.monotonic()
            live = httpx.get(target.proxy.metrics_url.replace("/metrics", "/health"), timeout=5)
            assert live.status_code == 200
            assert live.json() == {"status": "ok"}
            assert time.monotonic() - started < 1.0
        finally:
            for stream, response in zip(streams, opened, strict=True):
                response.close()
                stream.__exit__(None, None, None)


def test_a_client_that_never_finishes_its_headers_is_cut_off(target) -> None:
    with socket.create_connection(("127.0.0.1", target.proxy.port)) as sock:
        sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        elapsed = closed_within(sock, 5.0)
    assert elapsed is not None
    assert elapsed < 3.0  # HEADER_TIMEOUT=1 (was: held for gunicorn's 75 s keepalive)


def test_a_body_that_never_arrives_gets_a_408(target) -> None:
    with socket.create_connection(("127.0.0.1", target.proxy.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\n" + AUTH.encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":"
        )  # fmt: skip
        answer, closed = read_until_closed(sock, 5.0)
    assert status_of(answer) == 408
    assert b"did not arrive within 2s" in body_of(answer)
    assert closed  # the rest of the body would be read as the next request


def test_a_client_that_stops_reading_releases_the_backend_stream(target) -> None:
    body = json.dumps(
        {"model": "fake-chat", "messages": [{"role": "user", "content": "[[long:300000]]"}]}
    ).encode()
    request = (
        b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\n" + AUTH.encode()
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.connect(("127.0.0.1", target.proxy.port))
        sock.sendall(request)  # and then read nothing
        closed = wait_for(lambda: events(target.backend, "client_closed"), 10.0)
    finally:
        sock.close()
    assert closed, "the backend stream stayed open for a client that reads nothing"


def test_idle_keep_alive_connections_make_room_when_the_worker_is_nearly_full(target) -> None:
    idle = []
    try:
        for _ in range(CONNECTIONS - 2):
            sock = socket.create_connection(("127.0.0.1", target.proxy.port), timeout=10)
            sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n" + AUTH.encode()
                         + b"\r\n")  # fmt: skip
            assert status_of(sock.recv(65536)) == 200
            idle.append(sock)  # served, and now idling in keep-alive
        response = httpx.get(target.proxy.url + "/api/version", headers=HEADERS, timeout=5)
        assert response.status_code == 200
        dropped = sum(closed_within(sock, 2.0) is not None for sock in idle)
        assert dropped >= 1
    finally:
        for sock in idle:
            sock.close()


def test_the_worker_is_the_same_process_after_every_attack(target) -> None:
    # Placed last in the module: no attack above got the worker killed and replaced.
    workers = psutil.Process(target.proxy.pid).children()
    assert len(workers) == 1
    assert workers[0].create_time() < time.time() - 1
