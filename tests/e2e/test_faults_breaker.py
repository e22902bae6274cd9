"""The circuit breaker and client disconnects, end to end.

Breaker proxies run one worker (WEB_CONCURRENCY=1), so the per-worker breaker state is the
proxy's state: BREAKER_FAIL_MAX=3 consecutive failures open it, BREAKER_RESET_TIMEOUT=2 later a
trial call goes through (2 s rather than 1: on a loaded machine the checks made while the
breaker is open must still fit in the window).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, free_port, proxy_with_fake_backend
from tests.checks import ollama_error, openai_error

from .helpers import (
    backend_connections,
    chat,
    events,
    ndjson,
    ollama_chat_error,
    only_worker,
    requests_to,
    wait_for,
)

CHAT_PATH = "/v1/chat/completions"
SLOW_LONG = "[[slow:0.1]] [[long:100]]"  # ten seconds of answer, a piece every 100 ms
RESET = 2  # BREAKER_RESET_TIMEOUT


@pytest.fixture
def fresh_backend() -> Iterator[FakeBackend]:
    with FakeBackend() as backend:
        yield backend


def breaker_proxy(start_proxy: Callable[..., ProxyProcess], url: str) -> ProxyProcess:
    return start_proxy(
        OPENAI_API_BASE_URL=url,
        WEB_CONCURRENCY="1",
        BREAKER_FAIL_MAX="3",
        BREAKER_RESET_TIMEOUT=str(RESET),
        REQUEST_TIMEOUT="1",
    )


def assert_open(http: httpx.Client) -> str:
    """The breaker is open: a 503 at once, without asking the backend, saying when it retries."""
    started = time.monotonic()
    response = http.post("/api/chat", json=chat("hello"))
    message = ollama_error(response, 503)
    assert time.monotonic() - started < 0.5
    retry_after = response.headers["retry-after"]
    assert 1 <= int(retry_after) <= RESET
    assert "unavailable" in message
    assert f"try it again in {retry_after}s" in message
    return message


def assert_answers(http: httpx.Client, text: str = "hello") -> None:
    response = http.post("/api/chat", json=chat(text))
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == f"echo: {text}"


def disconnect_mid_stream(http: httpx.Client, path: str, body: dict[str, Any]) -> float:
    """Reads three lines of a stream, then hangs up; returns when the connection was closed."""
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            seen += bool(line)  # SSE separates events with blank lines
            if seen == 3:
                break
    return time.monotonic()


# --------------------------------------------------------------------------- the breaker


def test_the_breaker_opens_after_three_gateway_errors_fails_fast_then_recovers(
    start_proxy, fresh_backend
):
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for status in (502, 503, 504):
            ollama_error(http.post("/api/chat", json=chat(f"[[status:{status}]]")), status)
        assert_open(http)
        error = openai_error(http.post(CHAT_PATH, json=chat("hello")), 503)
        assert "unavailable" in error["message"]
        assert ollama_chat_error(proxy.url, "hello").status_code == 503
        assert requests_to(fresh_backend, CHAT_PATH) == 3  # nothing reached it while open
        time.sleep(RESET + 0.1)  # the reset timeout: the next call is a trial
        assert_answers(http)
        for number in range(4):  # closed again: failures start counting from zero
            assert_answers(http, f"again {number}")


def test_a_failed_trial_call_reopens_the_breaker_at_once(start_proxy, fresh_backend) -> None:
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(3):
            ollama_error(http.post("/api/chat", json=chat("[[status:503]]")), 503)
        assert_open(http)
        time.sleep(RESET + 0.1)
        ollama_error(http.post("/api/chat", json=chat("[[status:502]]")), 502)  # the trial
        assert_open(http)
        assert requests_to(fresh_backend, CHAT_PATH) == 4


def test_fast_500s_never_open_the_breaker_for_everyone(start_proxy, fresh_backend) -> None:
    # A backend that answers one client's requests with 500 (llama-cpp-python answers its own
    # validation errors so) is alive: other users must not get 503s because of it.
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(10):
            ollama_error(http.post("/api/chat", json=chat("[[status:500]]")), 502)
        assert_answers(http)


def test_a_gateway_error_relayed_on_v1_does_not_reset_the_count(start_proxy, fresh_backend):
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        ollama_error(http.post("/api/chat", json=chat("[[status:503]]")), 503)
        assert http.post(CHAT_PATH, json=chat("[[status:503]]")).status_code == 503
        ollama_error(http.post("/api/chat", json=chat("[[status:503]]")), 503)
        assert_open(http)


def test_refused_connections_open_the_breaker_and_a_returning_backend_closes_it(start_proxy):
    port = free_port()
    proxy = breaker_proxy(start_proxy, f"http://127.0.0.1:{port}/v1")
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(3):
            assert "connection refused" in ollama_error(http.post("/api/chat", json=chat("x")), 502)
        assert_open(http)
        with FakeBackend(port=port):
            time.sleep(RESET + 0.1)
            assert_answers(http)
            assert_answers(http, "still there")


def test_timeouts_open_the_breaker(start_proxy, fresh_backend) -> None:
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(3):
            ollama_error(http.post("/api/chat", json=chat("[[hang:3]]")), 504)
        assert_open(http)


def test_streams_breaking_mid_answer_open_the_breaker(start_proxy, fresh_backend) -> None:
    # A backend that dies in the middle of every answer is failing as surely as one that
    # refuses connections; these failures are consecutive too.
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(3):
            response = http.post("/api/chat", json=chat("a b c d e [[die-after:2]]", stream=True))
            assert response.status_code == 200
            assert "error" in ndjson(response.text)[-1]
        assert_open(http)


def test_4xx_answers_and_client_disconnects_do_not_open_the_breaker(start_proxy, fresh_backend):
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(4):
            ollama_error(http.post("/api/chat", json=chat("[[status:429]]")), 429)
            ollama_error(http.post("/api/chat", json=chat("[[status:400]]")), 400)
            ollama_error(http.post("/api/chat", json=chat("x", model="no-such-model")), 404)
            assert http.post(CHAT_PATH, json=chat("[[status:404]]")).status_code == 404
        for _ in range(4):
            disconnect_mid_stream(http, "/api/chat", chat(SLOW_LONG, stream=True))
        assert wait_for(lambda: len(events(fresh_backend, "client_closed")) == 4, 2.0)
        assert_answers(http)


def test_backend_calls_are_not_serialised(start_proxy, fresh_backend) -> None:
    # pybreaker's call() holds a lock for the whole call; the breaker must not queue calls.
    proxy = breaker_proxy(start_proxy, fresh_backend.url)
    results: list[int] = []

    def call(number: int) -> None:
        response = httpx.post(
            proxy.url + "/api/chat", json=chat(f"[[hang:0.5]] {number}"), timeout=10
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [200] * 10
    assert time.monotonic() - started < 2.5  # one after another would take 5 s


# --------------------------------------------------------------------------- client disconnects


DISCONNECTS = {
    "chat": ("/api/chat", chat(SLOW_LONG, stream=True)),
    "generate": ("/api/generate", {"model": "fake-chat", "prompt": SLOW_LONG}),
    "v1": (CHAT_PATH, chat(SLOW_LONG, stream=True)),
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyProcess, FakeBackend]]:
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("disconnects"), WEB_CONCURRENCY="1"
    ) as pair:
        yield pair


@pytest.mark.parametrize("endpoint", DISCONNECTS)
def test_a_client_leaving_mid_stream_closes_the_backend_stream_within_a_second(streams, endpoint):
    proxy, backend = streams
    backend.reset()
    path, body = DISCONNECTS[endpoint]
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        left_at = disconnect_mid_stream(http, path, body)
    closed = wait_for(lambda: events(backend, "client_closed"), 1.0)
    assert closed, f"the backend still streams a second after the client left: {backend.events}"
    assert closed[0]["at"] - left_at < 1.0
    assert closed[0]["path"] == CHAT_PATH
    assert not events(backend, "stream_done")
    assert wait_for(lambda: backend.open_streams == 0, 1.0)


def test_disconnects_leave_nothing_behind_in_the_worker(streams) -> None:
    proxy, backend = streams
    worker = only_worker(proxy)
    path, body = "/api/chat", chat("[[slow:0.02]] [[long:500]]", stream=True)
    with httpx.Client(base_url=proxy.url, timeout=10) as http:  # warm up pools and caches
        assert http.post("/api/chat", json=chat("warm up", stream=True)).status_code == 200
        disconnect_mid_stream(http, path, body)
    assert wait_for(lambda: backend.open_streams == 0, 1.0)
    backend.reset()
    time.sleep(0.3)
    fds, pooled = worker.num_fds(), backend_connections(worker, backend)
    for _ in range(10):
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            disconnect_mid_stream(http, path, body)
    assert wait_for(lambda: len(events(backend, "client_closed")) == 10, 2.0)
    time.sleep(0.3)
    # One leaked socket per disconnect would show as +10; 2 leaves room for a pooled
    # connection the warm-up had not opened yet.
    assert worker.num_fds() <= fds + 2
    assert backend_connections(worker, backend) <= pooled
    assert backend.open_streams == 0
