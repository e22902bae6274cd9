"""Probes, request IDs and the metrics one request records, through the Flask test client."""

from __future__ import annotations

import re

import pytest
import requests
import responses
from prometheus_client import REGISTRY

from app import metrics
from app.config import Settings

from .helpers import (
    BACKEND,
    CHAT_URL,
    MODELS_URL,
    USAGE,
    USER,
    add_stream,
    chat,
    chat_stream,
    lines,
    single,
    whole,
)

HEX32 = re.compile(r"[0-9a-f]{32}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def models_calls(backend: responses.RequestsMock) -> int:
    return sum(1 for call in backend.calls if call.request.url == MODELS_URL)


# --------------------------------------------------------------------------- probes


def test_health_answers_without_the_backend(client, backend):
    assert single(client.get("/health")) == {"status": "ok"}
    assert not backend.calls


def test_ready_fetches_the_models_once_then_trusts_the_recent_answer(client, backend):
    assert single(client.get("/ready")) == {"status": "ready"}
    assert single(client.get("/ready")) == {"status": "ready"}
    assert models_calls(backend) == 1
    # Ordinary traffic's fetch counts as recent too.
    client.get("/api/tags")
    assert models_calls(backend) == 1


def test_ready_is_503_with_the_reason_and_remembers_a_failure(client, backend):
    backend.replace(responses.GET, MODELS_URL, body=requests.ConnectionError("Connection refused"))
    for _ in range(3):
        body = single(client.get("/ready"), 503)
        assert body == {
            "status": "unavailable",
            "error": "backend backend.test unreachable: connection refused",
        }
    assert models_calls(backend) == 1  # probes do not hammer a failing backend


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, api_keys=frozenset({"k"}))])
def test_probes_need_no_api_key(client, backend):
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.get("/api/tags").status_code == 401


# --------------------------------------------------------------------------- request IDs


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_the_generic_dialect_sends_a_uuid_every_server_accepts(client, backend):
    # llama-cpp-python answers any other X-Request-ID with an empty 400: a UUID is what every
    # server tried takes. The access line ties it to the client's own ID.
    whole(backend)
    body = {"model": "llama3.2", "messages": USER, "stream": False}
    response = client.post("/api/chat", json=body, headers={"X-Request-ID": "abc.DEF_1-2"})
    assert response.headers["X-Request-ID"] == "abc.DEF_1-2"
    forwarded = [call.request.headers["X-Request-ID"] for call in backend.calls]
    assert len(forwarded) == 2
    assert all(UUID.fullmatch(rid) for rid in forwarded)
    assert len(set(forwarded)) == 2


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, backend_flavour="vllm")])
def test_a_valid_request_id_comes_back_and_reaches_vllm_with_a_suffix(client, backend):
    whole(backend)
    body = {"model": "llama3.2", "messages": USER, "stream": False}
    response = client.post("/api/chat", json=body, headers={"X-Request-ID": "abc.DEF_1-2"})
    assert response.headers["X-Request-ID"] == "abc.DEF_1-2"
    forwarded = [call.request.headers["X-Request-ID"] for call in backend.calls]
    assert len(forwarded) == 2  # the model list, then the chat
    assert all(re.fullmatch(r"abc\.DEF_1-2-[0-9a-f]{8}", rid) for rid in forwarded)
    assert len(set(forwarded)) == 2  # unique per backend call


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "semi;colon", "ünï"])
def test_a_missing_or_malformed_request_id_is_replaced(client, backend, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = client.get("/api/version", headers=headers)
    assert HEX32.fullmatch(response.headers["X-Request-ID"])


def test_errors_carry_the_request_id_too(client, backend):
    response = client.get("/api/nothing", headers={"X-Request-ID": "lost-1"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "lost-1"


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, backend_flavour="vllm")])
def test_pass_through_sends_our_id_and_keeps_the_backends_own(client, backend):
    backend.add(responses.POST, CHAT_URL, json={}, headers={"X-Request-Id": "req_backend"})
    response = client.post("/v1/chat/completions", data=b"{}", headers={"X-Request-ID": "mine"})
    assert response.headers["X-Request-ID"] == "req_backend"  # the OpenAI SDK reports it
    [call] = [call for call in backend.calls if call.request.url == CHAT_URL]
    assert call.request.headers["X-Request-ID"].startswith("mine-")


# --------------------------------------------------------------------------- metrics


def exporter_sample(app, name: str, **labels: str) -> float:
    registry = app.extensions[metrics.EXTENSION].registry
    return registry.get_sample_value(name, labels) or 0.0


def test_request_metrics_group_by_route_and_skip_the_probes(app, client, backend):
    client.get("/health")
    client.get("/ready")
    client.get("/api/scan-me")
    client.get("/api/version")
    count = "flask_http_request_duration_seconds_count"
    assert exporter_sample(app, count, method="GET", url_rule="/api/version", status="200") == 1
    assert exporter_sample(app, count, method="GET", url_rule="None", status="404") == 1
    assert exporter_sample(app, count, method="GET", url_rule="/health", status="200") == 0
    assert exporter_sample(app, count, method="GET", url_rule="/ready", status="200") == 0
    # The metrics are served by gunicorn's master on their own port, not here.
    assert client.get("/metrics").status_code == 404


def test_a_whole_answer_counts_its_tokens_under_the_backend_model(client, backend):
    labels = {"endpoint": "/api/chat", "model": "llama3.2"}
    before = sample("proxy_prompt_tokens_total", **labels)
    before_out = sample("proxy_completion_tokens_total", **labels)
    whole(backend)
    chat(client, model="LLAMA3.2:latest", stream=False)
    assert sample("proxy_prompt_tokens_total", **labels) - before == USAGE["prompt_tokens"]
    assert sample("proxy_completion_tokens_total", **labels) - before_out == 3


def test_a_stream_records_ttft_duration_outcome_and_tokens(client, backend):
    labels = {"endpoint": "/api/chat", "model": "llama3.2"}
    outcome = {"endpoint": "/api/chat", "outcome": "completed"}
    before = (
        sample("proxy_time_to_first_token_seconds_count", **labels),
        sample("proxy_stream_duration_seconds_count", **labels),
        sample("proxy_stream_outcomes_total", **outcome),
        sample("proxy_completion_tokens_total", **labels),
    )
    add_stream(backend, CHAT_URL, chat_stream("Hel", "lo"))
    lines(chat(client))
    after = (
        sample("proxy_time_to_first_token_seconds_count", **labels),
        sample("proxy_stream_duration_seconds_count", **labels),
        sample("proxy_stream_outcomes_total", **outcome),
        sample("proxy_completion_tokens_total", **labels),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 3]
    assert sample("proxy_streams_in_flight", endpoint="/api/chat") == 0


def test_a_client_that_hangs_up_is_a_client_disconnect(client, backend):
    outcome = {"endpoint": "/api/chat", "outcome": "client_disconnect"}
    before = sample("proxy_stream_outcomes_total", **outcome)
    add_stream(backend, CHAT_URL, chat_stream("a", "b", "c"))
    response = chat(client, buffered=False)
    chunks = response.iter_encoded()
    next(chunks)
    assert sample("proxy_streams_in_flight", endpoint="/api/chat") == 1
    response.close()  # what gunicorn does when a write to the client fails
    assert sample("proxy_stream_outcomes_total", **outcome) - before == 1
    assert sample("proxy_streams_in_flight", endpoint="/api/chat") == 0


def test_unknown_model_names_never_become_labels(client, backend):
    chat(client, model="attacker-random-name-123")
    assert "attacker-random-name-123" not in metrics._models
    names = {s.labels.get("model") for family in REGISTRY.collect() for s in family.samples}
    assert "attacker-random-name-123" not in names
