"""Metrics, logs and probes of a real gunicorn with two gevent workers, end to end.

Metrics are scraped from the master's port, so every number is the sum over both workers;
counters are compared as deltas around the traffic a test sends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, proxy_with_fake_backend

from .conftest import BACKEND_KEY
from .helpers import chat

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CLIENT_SECRET = "sk-client-secret-77e1"  # must never reach a log line
SLOW_LONG = "[[slow:0.05]] [[long:400]]"  # 20 s unless someone hangs up
SLOW_SHORT = "[[slow:0.05]] [[long:12]]"  # 0.6 s
STREAM = {"endpoint": "/api/chat", "model": "fake-chat"}


# --------------------------------------------------------------------------- helpers


def scrape(proxy: ProxyProcess) -> Samples:
    text = httpx.get(proxy.metrics_url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One series' value; 0 when it does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_sets(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def log_lines(proxy: ProxyProcess) -> list[dict[str, Any]]:
    """gunicorn's whole output; every line must be one JSON object."""
    lines = [json.loads(line) for line in proxy.logs().splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def access_lines(proxy: ProxyProcess, request_ids: set[str]) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(proxy)
        if line["logger"] == "gunicorn.access" and line.get("request_id") in request_ids
    ]


def last_object(response: httpx.Response) -> dict[str, Any]:
    """The `done: true` object: a stream's last line, or the whole answer."""
    last: dict[str, Any] = json.loads(response.text.strip().split("\n")[-1])
    assert last["done"] is True, last
    return last


def workers(proxy: ProxyProcess) -> list[psutil.Process]:
    return psutil.Process(proxy.pid).children()


@contextlib.contextmanager
def open_streams(proxy: ProxyProcess, texts: list[str]) -> Iterator[list[Iterator[str]]]:
    """Streamed chats, each on its own connection, each read up to its first line."""
    with contextlib.ExitStack() as stack:
        http = stack.enter_context(httpx.Client(base_url=proxy.url, timeout=30))
        lines = []
        for text in texts:
            response = stack.enter_context(
                http.stream("POST", "/api/chat", json=chat(text, stream=True))
            )
            assert response.status_code == 200
            reader = response.iter_lines()
            assert json.loads(next(reader))["done"] is False
            lines.append(reader)
        yield lines


def in_flight(proxy: ProxyProcess) -> float:
    return value(scrape(proxy), "proxy_streams_in_flight", endpoint="/api/chat")


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ProxyProcess, FakeBackend]]:
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("observed"),
        backend_key=BACKEND_KEY,
        BACKEND_FLAVOUR="vllm",
        LOG_LEVEL="DEBUG",
    ) as pair:
        yield pair


# --------------------------------------------------------------------------- metrics


class Traffic:
    """Rounds of requests sent at once, each on its own connection, counted as they go."""

    def __init__(self, proxy: ProxyProcess) -> None:
        self.proxy = proxy
        self.sent = {"whole": 0, "stream": 0, "missing": 0}
        self.tokens = {"prompt": 0, "completion": 0}
        self.request_ids: set[str] = set()

    def one_round(self, n: int) -> None:
        request_id, stream = f"count-{n}", n % 2 == 0
        self.request_ids.add(request_id)
        # A new connection per request: each goes to whichever worker accepts it first.
        headers = {"X-Request-ID": request_id, "Connection": "close"}
        body = chat(f"hello {n}", stream=stream)
        response = httpx.post(self.proxy.url + "/api/chat", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-Request-ID"] == request_id
        last = last_object(response)
        self.tokens["prompt"] += last["prompt_eval_count"]
        self.tokens["completion"] += last["eval_count"]
        self.sent["stream" if stream else "whole"] += 1
        assert httpx.get(f"{self.proxy.url}/api/scan-{n}").status_code == 404
        self.sent["missing"] += 1
        assert httpx.get(self.proxy.url + "/health").status_code == 200
        assert httpx.get(self.proxy.url + "/ready").status_code == 200

    def served_by(self) -> set[int] | None:
        """The pids of the workers that served the rounds, once all access lines are out."""
        lines = access_lines(self.proxy, self.request_ids)
        return {line["pid"] for line in lines} if len(lines) == len(self.request_ids) else None

    def until_both_workers_served(self) -> None:
        for batch in range(10):  # more only while every connection went to the same worker
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(self.one_round, range(8 * batch, 8 * batch + 8)))
            pids = wait_for(self.served_by)
            if pids and len(pids) == 2:
                return
        pytest.fail("the traffic never reached both workers")


def test_counters_add_up_exactly_over_both_workers(observed) -> None:
    proxy, backend = observed
    backend.reset()
    before = scrape(proxy)
    traffic = Traffic(proxy)
    traffic.until_both_workers_served()
    sent, tokens = traffic.sent, traffic.tokens
    after = scrape(proxy)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chats = sent["whole"] + sent["stream"]
    duration_count = "flask_http_request_duration_seconds_count"
    assert delta(duration_count, method="POST", url_rule="/api/chat", status="200") == chats
    assert delta("flask_http_request_total", method="POST", status="200") == chats
    # Unknown paths are one route ("None"), not a series per scanned URL; probes not counted.
    assert delta(duration_count, method="GET", url_rule="None", status="404") == sent["missing"]
    rules = {labels["url_rule"] for labels in label_sets(after, duration_count)}
    assert not rules & {"/health", "/ready"}
    assert not [rule for rule in rules if "scan" in rule]
    # The streams' own metrics.
    completed = {"endpoint": "/api/chat", "outcome": "completed"}
    assert delta("proxy_stream_outcomes_total", **completed) == sent["stream"]
    assert delta("proxy_stream_duration_seconds_count", **STREAM) == sent["stream"]
    assert delta("proxy_time_to_first_token_seconds_count", **STREAM) == sent["stream"]
    assert delta("proxy_time_to_first_token_seconds_sum", **STREAM) > 0
    # Tokens of streamed and whole answers: exactly what the clients were told.
    assert delta("proxy_prompt_tokens_total", **STREAM) == tokens["prompt"]
    assert delta("proxy_completion_tokens_total", **STREAM) == tokens["completion"]
    assert (
        delta(
            "proxy_backend_request_duration_seconds_count",
            backend="default",
            path="/chat/completions",
        )
        == chats
    )
    assert value(after, "proxy_streams_in_flight", endpoint="/api/chat") == 0
    # Both workers sample their process; the master is not a worker.
    assert {
        int(labels["pid"]) for labels in label_sets(after, "proxy_worker_resident_memory_bytes")
    } == {worker.pid for worker in workers(proxy)}
    # Concurrent requests in one worker never mix up their IDs: each backend call carries the
    # ID of the request it serves.
    with backend.lock:
        calls = [r for r in backend.requests if r["path"] == "/v1/chat/completions"]
    assert len(calls) == chats
    for call in calls:
        number = call["json"]["messages"][-1]["content"].removeprefix("hello ")
        assert call["headers"]["x-request-id"].startswith(f"count-{number}-")


def test_in_flight_streams_and_breaker_state_while_open_and_after(observed) -> None:
    proxy, backend = observed
    before = scrape(proxy)
    with open_streams(proxy, [SLOW_SHORT] * 2 + [SLOW_LONG] * 4) as streams:
        during = scrape(proxy)
        assert value(during, "proxy_streams_in_flight", endpoint="/api/chat") == 6
        assert value(during, "proxy_breaker_state", backend="default") == 0
        for reader in streams[:2]:  # the short ones run to their end
            assert json.loads(list(reader)[-1])["done"] is True
        assert in_flight(proxy) == 4
    # The four long ones were hung up on: each is noticed at its next chunk (50 ms).
    assert wait_for(lambda: in_flight(proxy) == 0, 3.0)
    after = scrape(proxy)

    def delta(outcome: str) -> float:
        labels = {"endpoint": "/api/chat", "outcome": outcome}
        return value(after, "proxy_stream_outcomes_total", **labels) - value(
            before, "proxy_stream_outcomes_total", **labels
        )

    assert (delta("completed"), delta("client_disconnect")) == (2, 4)
    assert value(after, "proxy_breaker_state", backend="default") == 0

    def backend_hung_up_on() -> int:
        with backend.lock:
            return sum(event["event"] == "client_closed" for event in backend.events)

    assert wait_for(lambda: backend_hung_up_on() >= 4, 3.0)  # the proxy hung up on it too


def test_breaker_state_reads_open_then_closed_and_logs_keep_to_log_level(start_proxy) -> None:
    with FakeBackend() as backend:
        proxy = start_proxy(
            OPENAI_API_BASE_URL=backend.url,
            BREAKER_FAIL_MAX="2",
            BREAKER_RESET_TIMEOUT="1",
            LOG_LEVEL="WARNING",
        )
        assert value(scrape(proxy), "proxy_breaker_state", backend="default") == 0

        def fail() -> bool:
            body = chat("[[status:503]]", stream=False)
            httpx.post(proxy.url + "/api/chat", json=body, headers={"Connection": "close"})
            return value(scrape(proxy), "proxy_breaker_state", backend="default") == 2

        assert wait_for(fail, 5.0), "the breaker never opened"
        opened = scrape(proxy)
        assert value(opened, "proxy_breaker_transitions_total", backend="default", to="open") >= 1
        assert value(opened, "proxy_backend_errors_total", backend="default", kind="http_5xx") >= 2

        def succeed() -> bool:
            body = chat("hello", stream=False)
            httpx.post(proxy.url + "/api/chat", json=body, headers={"Connection": "close"})
            return value(scrape(proxy), "proxy_breaker_state", backend="default") == 0

        time.sleep(1.0)  # BREAKER_RESET_TIMEOUT: then a trial request may close it again
        assert wait_for(succeed, 5.0), "the breaker never closed"
        closed = scrape(proxy)
        assert (
            value(closed, "proxy_breaker_transitions_total", backend="default", to="half-open") >= 1
        )
        assert value(closed, "proxy_breaker_transitions_total", backend="default", to="closed") >= 1
    lines = log_lines(proxy)
    assert {line["level"] for line in lines} <= {"WARNING", "ERROR", "CRITICAL"}
    assert any(
        line["message"] == "circuit breaker of backend default: closed -> open" for line in lines
    )


def test_a_killed_worker_is_replaced_and_its_live_gauges_go_with_it(start_proxy) -> None:
    with FakeBackend() as backend:
        proxy = start_proxy(OPENAI_API_BASE_URL=backend.url)
        with open_streams(proxy, [SLOW_LONG] * 4):
            assert in_flight(proxy) == 4

            def streams_of(worker: psutil.Process) -> int:
                return sum(
                    conn.laddr.port == proxy.port and conn.status == psutil.CONN_ESTABLISHED
                    for conn in worker.net_connections(kind="tcp")
                )

            victim = max(workers(proxy), key=streams_of)
            killed = streams_of(victim)
            assert killed >= 1
            os.kill(victim.pid, signal.SIGKILL)

            def replaced() -> Samples | None:
                pids = {worker.pid for worker in workers(proxy)}
                samples = scrape(proxy)
                sampled = {
                    int(labels["pid"])
                    for labels in label_sets(samples, "proxy_worker_resident_memory_bytes")
                }
                ready = len(pids) == 2 and victim.pid not in pids and sampled == pids
                return samples if ready else None

            samples = wait_for(replaced, 10.0)
            assert samples is not None, "the worker was not replaced"
            # The dead worker's streams left the sum; the survivor's are still counted.
            assert value(samples, "proxy_streams_in_flight", endpoint="/api/chat") == 4 - killed
        assert wait_for(lambda: in_flight(proxy) == 0, 3.0)
        assert httpx.post(proxy.url + "/api/chat", json=chat("hi", stream=False)).status_code == 200
    assert "Traceback" not in proxy.logs()


# --------------------------------------------------------------------------- logs


def test_one_request_id_ties_access_line_app_lines_and_backend_request(observed) -> None:
    proxy, backend = observed
    backend.reset()
    headers = {"X-Request-ID": "trace-42.a_b", "Authorization": f"Bearer {CLIENT_SECRET}"}
    response = httpx.post(
        proxy.url + "/api/chat", json=chat("hello trace", stream=True), headers=headers
    )
    assert response.headers["X-Request-ID"] == "trace-42.a_b"
    last = last_object(response)
    # A malformed ID is replaced, a missing one generated; both come back in the header.
    for sent_id in ("bad id\twith spaces", None):
        sent_headers = {} if sent_id is None else {"X-Request-ID": sent_id}
        reply = httpx.post(
            proxy.url + "/api/chat", json=chat("x", stream=False), headers=sent_headers
        )
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["X-Request-ID"])

    [access] = wait_for(lambda: access_lines(proxy, {"trace-42.a_b"}))
    assert access["method"] == "POST"
    assert access["path"] == "/api/chat"
    assert access["status"] == 200
    assert access["endpoint"] == "/api/chat"
    assert access["model"] == "fake-chat"
    assert access["prompt_tokens"] == last["prompt_eval_count"]
    assert access["completion_tokens"] == last["eval_count"]
    assert access["duration_ms"] > 0
    assert access["bytes"] == len(response.content)
    app_lines = [
        line
        for line in log_lines(proxy)
        if line.get("request_id") == "trace-42.a_b" and line["logger"].startswith("app.")
    ]
    [sent] = [
        line
        for line in app_lines
        if line["message"] == "backend answered POST /chat/completions: 200"
    ]
    [ended] = [line for line in app_lines if line["message"] == "stream ended: completed"]
    assert ended["completion_tokens"] == last["eval_count"]
    assert ended["ttft_ms"] <= ended["duration_ms"]
    # The backend saw the same ID, with a suffix that keeps each backend call unique.
    with backend.lock:
        [forwarded] = [
            r["headers"]["x-request-id"]
            for r in backend.requests
            if r["path"] == "/v1/chat/completions"
            and r["headers"]["x-request-id"].startswith("trace-42.a_b-")
        ]
    assert forwarded == sent["upstream_request_id"] == access["backend_request_id"]
    text = proxy.logs()
    assert CLIENT_SECRET not in text
    assert BACKEND_KEY not in text
    assert "MonkeyPatchWarning" not in text
    assert "Traceback" not in text


def test_probes_answer_and_the_metrics_are_not_on_the_proxy_port(observed) -> None:
    proxy, _ = observed
    assert httpx.get(proxy.url + "/health").json() == {"status": "ok"}
    assert httpx.get(proxy.url + "/ready").json() == {"status": "ready"}
    # The metrics are on their own port only.
    assert httpx.get(proxy.url + "/metrics").status_code == 404
