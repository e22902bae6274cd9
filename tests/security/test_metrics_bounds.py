"""Whatever clients send, the metrics stay a bounded set of series, and the operations port
(metrics and liveness, served by gunicorn's master) cannot be made to grow the master."""

from __future__ import annotations

import random
import socket
import string

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from .conftest import AUTH, CLIENT_KEY, exchange, status_of

HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}"}


def series(metrics_url: str) -> int:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


def random_method() -> str:
    return "".join(random.choices(string.ascii_uppercase, k=12))


def test_random_methods_and_paths_add_no_series(target) -> None:
    def attack(count: int) -> None:
        for _ in range(count):
            method = random_method()
            path = "/" + "".join(random.choices(string.ascii_lowercase, k=8))
            request = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            answer = exchange(target.proxy.port, request.encode())
            assert status_of(answer) in (401, 404, 405)

    attack(20)  # every kind of answer has been seen once
    before = series(target.proxy.metrics_url)
    attack(200)
    assert series(target.proxy.metrics_url) == before  # 5,000 made 100,000 series


def test_random_paths_and_models_on_the_new_apis_add_no_series(target) -> None:
    def attack(count: int) -> None:
        for _ in range(count):
            word = "".join(random.choices(string.ascii_lowercase, k=8))
            calls = [("GET", f"/v1/models/{word}"), (random_method(), f"/v1/messages/{word}")]
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                calls += [(method, f"/v1/messages/{word}"), (method, f"/v1/responses/{word}")]
            for method, path in calls:
                request = (
                    f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{AUTH}"
                    "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                )
                assert status_of(exchange(target.proxy.port, request.encode())) in (404, 405)
            for path, body in (
                ("/v1/messages", {"model": word, "max_tokens": 1, "messages": []}),
                ("/v1/messages", {"model": word, "max_tokens": 1,
                                  "messages": [{"role": "user", "content": "x"}]}),
                ("/v1/responses", {"model": word, "input": "x"}),
            ):  # fmt: skip
                response = httpx.post(target.proxy.url + path, json=body, headers=HEADERS)
                assert response.status_code in (400, 404)

    attack(3)  # every kind of answer has been seen once
    before = series(target.proxy.metrics_url)
    attack(30)
    assert series(target.proxy.metrics_url) == before


def test_idle_connections_cannot_grow_the_master_or_block_scrapes(target) -> None:
    master = psutil.Process(target.proxy.pid)
    threads = master.num_threads()
    port = int(target.proxy.metrics_url.split(":")[2].split("/")[0])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    try:
        assert master.num_threads() <= threads + 8  # 199 idle connections made 199 threads
    finally:
        for sock in idle:
            sock.close()
    # Idle scrapers were cut off after 5 s at most; a real scrape answers now.
    response = httpx.get(target.proxy.metrics_url, timeout=10)
    assert response.status_code == 200
    assert "proxy_breaker_state" in response.text
