"""Backend faults end to end: a real gunicorn in front of a fake backend told to misbehave.

Every failure must reach the client as something it can act on: the right status and an
Ollama-shaped error before a stream starts (OpenAI's shape, or the backend's own answer, on
/v1), a final error line after. The breaker and client disconnects are in
test_faults_breaker.py, shutdown and load in test_faults_server.py, bad input through gunicorn
in test_faults_input.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import ollama
import openai
import pytest

from harness.fake_backend import RETRY_AFTER, FakeBackend, error_body
from harness.proxy_process import ProxyProcess, free_port, proxy_with_fake_backend
from tests.checks import ollama_error, openai_error

from .helpers import (
    chat,
    events,
    ndjson,
    ollama_chat_error,
    openai_chat_error,
    openai_sdk,
    requests_to,
    wait_for,
)

CHAT_PATH = "/v1/chat/completions"
BROKE = "the connection to the backend broke in the middle of the answer"


@dataclass(frozen=True)
class Rig:
    proxy: ProxyProcess
    backend: FakeBackend


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One proxy for the whole module: a 1 s read timeout, and a breaker that never opens, so
    the faults here cannot leak into other tests as an open circuit."""
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("faults"),
        REQUEST_TIMEOUT="1",
        BREAKER_FAIL_MAX="1000",
        WEB_CONCURRENCY="1",
        LOG_LEVEL="DEBUG",
    ) as (proxy, backend):
        yield Rig(proxy, backend)


@pytest.fixture
def rigged(rig: Rig) -> Rig:
    rig.backend.reset()
    return rig


class StallingBackend(FakeBackend):
    """Streams the first `after` pieces of an answer, then goes silent without closing: a
    stuck GPU, or a peer that vanished without a reset."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self._pauses = 0

    def sleep(self, seconds: float) -> bool:
        with self.lock:
            self._pauses += 1
            stall = self._pauses > self.after
        return super().sleep(30 if stall else seconds)  # stop() wakes it up


def request_for(endpoint: str, marker: str) -> tuple[str, dict[str, Any]]:
    return {
        "chat-stream": ("/api/chat", chat(marker, stream=True)),
        "chat": ("/api/chat", chat(marker)),
        "generate-stream": ("/api/generate", {"model": "fake-chat", "prompt": marker}),
        "generate": ("/api/generate", {"model": "fake-chat", "prompt": marker, "stream": False}),
        "embed": ("/api/embed", {"model": "fake-embed", "input": marker}),
    }[endpoint]


ENDPOINTS = ["chat-stream", "chat", "generate-stream", "generate", "embed"]


# --------------------------------------------------------------------------- backend down


def test_backend_down_is_a_quick_502_naming_the_refused_connection(start_proxy) -> None:
    port = free_port()  # nobody listens here
    proxy = start_proxy(
        OPENAI_API_BASE_URL=f"http://127.0.0.1:{port}/v1",
        WEB_CONCURRENCY="1",
        BREAKER_FAIL_MAX="1000",
    )
    expected = f"backend 127.0.0.1:{port} unreachable: connection refused"
    calls = [("GET", "/api/tags", None), ("POST", "/api/show", {"model": "fake-chat"})]
    calls += [("POST", *request_for(endpoint, "hi")) for endpoint in ENDPOINTS]
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for method, path, body in calls:
            started = time.monotonic()
            assert ollama_error(http.request(method, path, json=body), 502) == expected
            # Connection retries back off for a fraction of a second, never for long.
            assert time.monotonic() - started < 3, path
        error = openai_error(http.post(CHAT_PATH, json=chat("hi")), 502)
        assert error["message"] == expected
    caught = ollama_chat_error(proxy.url, "hi")
    assert (caught.status_code, caught.error) == (502, expected)


def test_a_backend_coming_up_during_the_connection_retries_is_reached(start_proxy) -> None:
    # MAX_RETRIES=5 backs off 0, 0.2, 0.4, 0.8, 1.6 s (plus jitter): a backend that starts
    # listening 0.3 s after the first refused connection is reached by a later attempt.
    port = free_port()
    proxy = start_proxy(
        OPENAI_API_BASE_URL=f"http://127.0.0.1:{port}/v1", MAX_RETRIES="5", WEB_CONCURRENCY="1"
    )
    late: list[FakeBackend] = []
    timer = threading.Timer(0.3, lambda: late.append(FakeBackend(port=port).start()))
    started = time.monotonic()
    timer.start()
    try:
        response = httpx.post(proxy.url + "/api/chat", json=chat("hello"), timeout=10)
    finally:
        timer.join()
        for backend in late:
            backend.stop()
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == "echo: hello"
    assert time.monotonic() - started > 0.3  # it waited for the backend, it did not fail


def test_a_backend_restart_between_requests_costs_no_error(start_proxy) -> None:
    # The proxy's pool holds keep-alive connections to the old process; they must be replaced
    # quietly, not surface as errors.
    port = free_port()
    first = FakeBackend(port=port).start()
    proxy = start_proxy(OPENAI_API_BASE_URL=first.url, WEB_CONCURRENCY="1")
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        assert http.post("/api/chat", json=chat("before")).status_code == 200
        first.stop()
        second = FakeBackend(port=port).start()
        try:
            for number, stream in enumerate([False, True, False]):
                response = http.post("/api/chat", json=chat(f"after {number}", stream=stream))
                assert response.status_code == 200, response.text
                assert ndjson(response.text)[-1]["done"] is True
        finally:
            second.stop()


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, "v1-stream"])
def test_backend_connections_are_pooled_and_reused(rigged, endpoint) -> None:
    # One Session per worker: sequential calls share one keep-alive connection to the backend.
    # A new connection per call costs a TCP (and, to a remote backend, a TLS) handshake each.
    if endpoint == "v1-stream":
        path, body = CHAT_PATH, chat("hi", stream=True)
    else:
        path, body = request_for(endpoint, "hi")
    with httpx.Client(base_url=rigged.proxy.url, timeout=10) as http:
        assert http.post("/api/chat", json=chat("warm up")).status_code == 200
        rigged.backend.reset()
        for _ in range(10):
            assert http.post(path, json=body).status_code == 200
    assert rigged.backend.connections_accepted <= 1, "connections opened for 10 calls"


# --------------------------------------------------------------------------- hanging backend


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_hanging_backend_is_a_504_after_the_request_timeout(rigged, endpoint) -> None:
    path, body = request_for(endpoint, "[[hang:5]]")
    started = time.monotonic()
    response = httpx.post(rigged.proxy.url + path, json=body, timeout=10)
    elapsed = time.monotonic() - started
    expected = f"backend 127.0.0.1:{rigged.backend.port} did not answer within 1s"
    assert ollama_error(response, 504) == expected
    assert 0.9 < elapsed < 3  # REQUEST_TIMEOUT=1, and a read timeout is never retried
    with rigged.backend.lock:
        posts = [r for r in rigged.backend.requests if r["method"] == "POST"]
    assert len(posts) == 1  # no retry of a request the backend may be working on


def test_a_backend_hanging_on_a_get_is_a_504_too(rigged) -> None:
    # For a GET, urllib3 gives up on the read by its retry policy, and requests reports that
    # as a connection error: it is still a backend that did not answer, not one unreachable.
    rigged.backend.fault = "[[hang:3]]"
    response = httpx.get(rigged.proxy.url + "/v1/models", timeout=10)
    message = openai_error(response, 504)["message"]
    assert message == f"backend 127.0.0.1:{rigged.backend.port} did not answer within 1s"


def test_a_hanging_backend_reaches_both_sdks_as_a_504(rigged) -> None:
    caught = ollama_chat_error(rigged.proxy.url, "[[hang:5]]")
    assert caught.status_code == 504
    assert "did not answer within 1s" in caught.error
    failed = openai_chat_error(rigged.proxy.url, "[[hang:5]]")
    assert isinstance(failed, openai.APIStatusError)
    assert failed.status_code == 504
    assert "did not answer within 1s" in failed.message


def test_a_backend_going_silent_mid_stream_ends_it_with_an_error_line(start_proxy) -> None:
    backend = StallingBackend(after=3).start()
    try:
        proxy = start_proxy(
            OPENAI_API_BASE_URL=backend.url, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1"
        )
        started = time.monotonic()
        response = httpx.post(
            proxy.url + "/api/chat", json=chat("a b c d e f g", stream=True), timeout=10
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        lines = ndjson(response.text)
        assert lines[-1] == {"error": "the backend sent nothing for 1s in the middle of the answer"}
        assert "".join(line["message"]["content"] for line in lines[:-1])  # a partial answer
        assert not any(line.get("done") for line in lines)
        assert elapsed < 3
        assert requests_to(backend, CHAT_PATH) == 1
    finally:
        backend.stop()


# --------------------------------------------------------------------------- error statuses


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        (500, 502, "backend error (HTTP 500): fake failure 500"),
        (502, 502, "backend error (HTTP 502): fake failure 502"),
        (503, 503, "backend unavailable (HTTP 503): fake failure 503"),
        (504, 504, "backend unavailable (HTTP 504): fake failure 504"),
        (429, 429, "fake failure 429"),
    ],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_backend_error_statuses_before_the_answer(rigged, endpoint, status, expected, message):
    path, body = request_for(endpoint, f"[[status:{status}]]")
    response = httpx.post(rigged.proxy.url + path, json=body, timeout=10)
    assert ollama_error(response, expected) == message
    assert response.headers.get("retry-after") == RETRY_AFTER.get(status)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("stream", [False, True])
def test_backend_error_statuses_are_relayed_untouched_on_v1(rigged, status, stream) -> None:
    body = chat(f"[[status:{status}]]", stream=stream)
    response = httpx.post(rigged.proxy.url + CHAT_PATH, json=body, timeout=10)
    assert response.status_code == status
    assert response.json() == error_body(status, f"fake failure {status}")
    assert response.headers.get("retry-after") == RETRY_AFTER.get(status)


def test_a_backend_429_reaches_both_sdks_with_its_retry_after(rigged) -> None:
    caught = ollama_chat_error(rigged.proxy.url, "[[status:429]]")
    assert (caught.status_code, caught.error) == (429, "fake failure 429")
    limited = openai_chat_error(rigged.proxy.url, "[[status:429]]")
    assert isinstance(limited, openai.RateLimitError)
    assert limited.response.headers["retry-after"] == "7"


# --------------------------------------------------------------------------- broken streams


def test_a_backend_dying_mid_stream_is_never_retried(rigged) -> None:
    body = {"model": "fake-chat", "prompt": "one two three four five [[die-after:3]]"}
    response = httpx.post(rigged.proxy.url + "/api/generate", json=body, timeout=10)
    assert response.status_code == 200
    lines = ndjson(response.text)
    assert lines[-1] == {"error": BROKE}
    assert "".join(line.get("response", "") for line in lines[:-1])
    assert not any(line.get("done") for line in lines)
    # The client already has part of the answer: a retry would duplicate or change it.
    assert requests_to(rigged.backend, CHAT_PATH) == 1
    assert wait_for(lambda: events(rigged.backend, "stream_killed"), 1.0)


def test_a_backend_dying_mid_v1_stream_raises_in_the_openai_sdk(rigged) -> None:
    received = []
    with (
        openai_sdk(rigged.proxy.url) as oai,
        oai.chat.completions.create(
            model="fake-chat",
            messages=[{"role": "user", "content": "one two three four [[die-after:3]]"}],
            stream=True,
        ) as stream,
        pytest.raises(openai.APIError, match="broke in the middle"),
    ):
        received.extend(stream)
    assert received
    assert requests_to(rigged.backend, CHAT_PATH) == 1


@pytest.mark.parametrize("path", ["/api/chat", CHAT_PATH])
def test_a_backend_crashing_before_any_byte_is_a_502_retried_at_most_once(rigged, path) -> None:
    # A crash before the response is indistinguishable from a stale keep-alive socket, which
    # is retried once on a fresh connection; never more.
    body = chat("[[die-after:1]]")
    response = httpx.post(rigged.proxy.url + path, json=body, timeout=10)
    if path == CHAT_PATH:
        message = openai_error(response, 502)["message"]
    else:
        message = ollama_error(response, 502)
    assert message.startswith(f"backend 127.0.0.1:{rigged.backend.port} unreachable: connection")
    assert 1 <= requests_to(rigged.backend, CHAT_PATH) <= 2


@pytest.mark.parametrize(
    ("marker", "fragment"),
    [
        ("[[garbage]]", "malformed"),
        ("[[error-event]]", "fake mid-stream error"),
        ("[[no-finish]]", "ended before it was complete"),
    ],
)
def test_broken_event_streams_raise_in_the_ollama_sdk_after_partial_output(
    rigged, marker, fragment
) -> None:
    received = []
    messages = [{"role": "user", "content": f"one two three {marker}"}]
    with (
        ollama.Client(host=rigged.proxy.url, timeout=10) as client,
        pytest.raises(ollama.ResponseError) as caught,
    ):
        received.extend(client.chat("fake-chat", messages=messages, stream=True))
    assert fragment in caught.value.error
    assert received
    assert not any(chunk.done for chunk in received)


def test_broken_streams_leave_no_backend_stream_open(rigged) -> None:
    for marker in ("[[garbage]]", "[[error-event]]", "[[die-after:2]]", "[[no-finish]]"):
        httpx.post(
            rigged.proxy.url + "/api/chat", json=chat(f"a b c {marker}", stream=True), timeout=10
        )
    assert wait_for(lambda: rigged.backend.open_streams == 0, 1.0)
