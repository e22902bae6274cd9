"""`/v1/messages` and `/v1/messages/count_tokens` through the Flask app, with a mocked
backend: routing, what reaches the backend, Anthropic's error shapes, streams and metrics."""

from __future__ import annotations

import json

import pytest
import responses
from prometheus_client import REGISTRY

from app.backends_file import BackendSpec
from app.config import ModelMapping, Settings
from tests.checks import anthropic_error, sse_events
from tests.samples import ANTHROPIC_WEATHER_TOOL

from .helpers import (
    BACKEND,
    CHAT_URL,
    add_stream,
    chat_stream,
    completion,
    delta,
    sent,
    sse,
    whole,
)

BODY = {"model": "llama3.2", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
KEYED = Settings(backend_url=BACKEND, backend_flavour="generic", api_keys=frozenset({"k-1"}))
NATIVE = Settings(backend_url=BACKEND, backend_flavour="llama-server-native")
LLAMA_CPP_PYTHON = Settings(backend_url=BACKEND, backend_flavour="llama-cpp-python")
DEFAULTED = Settings(
    backend_url=BACKEND, backend_flavour="generic", mapping=ModelMapping(default_model="llama3.2")
)


def test_a_message_and_what_the_backend_was_sent(client, backend):
    whole(backend)
    response = client.post(
        "/v1/messages?beta=true",
        json={**BODY, "metadata": {"user_id": "u1"}, "context_management": {"edits": []}},
        headers={"x-api-key": "client-key", "anthropic-beta": "claude-code-20250219"},
    )
    assert response.status_code == 200
    message = response.get_json()
    assert message["id"].startswith("msg_")
    assert (message["model"], message["content"]) == (
        "llama3.2",
        [{"type": "text", "text": "Hello!"}],
    )
    assert message["usage"] == {"input_tokens": 7, "output_tokens": 3}
    assert response.headers["request-id"].startswith("req_")
    body = sent(backend, CHAT_URL)
    # Only chat completions fields: nothing Anthropic-only, and no client credentials.
    assert set(body) == {"model", "messages", "max_tokens"}
    [call] = [c for c in backend.calls if c.request.url == CHAT_URL]
    headers = {name.lower() for name in call.request.headers}
    assert not headers & {"x-api-key", "anthropic-beta", "anthropic-version", "authorization"}


def test_a_stream_through_the_app(client, backend):
    add_stream(backend, CHAT_URL, chat_stream("Hel", "lo"))
    response = client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.status_code == 200
    assert response.content_type.startswith("text/event-stream")
    got = sse_events(response.data)
    text = "".join(data["delta"]["text"] for name, data in got if name == "content_block_delta")
    assert text == "Hello"
    assert got[-1][0] == "message_stop"
    assert sent(backend, CHAT_URL)["stream_options"] == {"include_usage": True}


def test_a_failure_mid_stream_ends_with_an_error_event(client, backend):
    body = sse(delta("Hel"), {"error": {"message": "engine died", "code": 500}})
    add_stream(backend, CHAT_URL, body)
    got = sse_events(client.post("/v1/messages", json={**BODY, "stream": True}).data)
    assert got[-1] == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "engine died"}},
    )
    assert "message_stop" not in [name for name, _ in got]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (429, "rate_limit_error"),
        (503, "overloaded_error"),
        (500, "api_error"),
    ],
)
def test_backend_errors_before_the_stream_keep_their_status_in_anthropics_shape(
    client, backend, status, kind
):
    backend.add(
        responses.POST,
        CHAT_URL,
        json={"error": {"message": "nope"}},
        status=status,
        headers={"Retry-After": "3"} if status == 429 else {},
    )
    response = client.post("/v1/messages", json={**BODY, "stream": True})
    expected = 502 if status == 500 else status
    assert anthropic_error(response, expected)["type"] == kind
    if status == 429:
        assert response.headers["Retry-After"] == "3"


@pytest.mark.parametrize(
    ("call", "status", "kind"),
    [
        (("POST", "/v1/messages", {**BODY, "model": "claude-opus-4"}), 404, "not_found_error"),
        (("POST", "/v1/messages", {**BODY, "messages": []}), 400, "invalid_request_error"),
        (
            ("POST", "/v1/messages", {"model": "llama3.2", "messages": []}),
            400,
            "invalid_request_error",
        ),
        (("GET", "/v1/messages", None), 405, "invalid_request_error"),
        (("POST", "/v1/messages/batches", BODY), 404, "not_found_error"),
        # PUT and PATCH went on to the backend, with its key, through the /v1 pass-through.
        (("PUT", "/v1/messages/batches", BODY), 404, "not_found_error"),
        (("PATCH", "/v1/messages/batches/b_1", BODY), 404, "not_found_error"),
        (("PUT", "/v1/messages/count_tokens", BODY), 405, "invalid_request_error"),
        (("GET", "/v1/messages/count_tokens", None), 405, "invalid_request_error"),
    ],
)
def test_client_errors_are_in_anthropics_shape(client, backend, call, status, kind):
    method, path, body = call
    response = client.open(path, method=method, json=body)
    assert anthropic_error(response, status)["type"] == kind
    assert [c.request.url for c in backend.calls if "/models" not in c.request.url] == []


def test_an_unknown_model_names_it(client, backend):
    response = client.post("/v1/messages", json={**BODY, "model": "claude-opus-4"})
    assert "claude-opus-4" in anthropic_error(response, 404)["message"]


def test_invalid_json_is_a_400_in_anthropics_shape(client, backend):
    response = client.post("/v1/messages", data=b'{"model": ', content_type="application/json")
    assert "invalid JSON" in anthropic_error(response, 400)["message"]


@pytest.mark.parametrize("settings", [KEYED])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-api-key": "k-1"}, 200),
        ({"Authorization": "Bearer k-1"}, 200),
        ({"x-api-key": "nope"}, 401),
        ({}, 401),
    ],
)
def test_proxy_keys_by_x_api_key_or_bearer(client, backend, headers, status):
    whole(backend)
    response = client.post("/v1/messages", json=BODY, headers=headers)
    if status == 401:
        assert anthropic_error(response, 401)["type"] == "authentication_error"
    else:
        assert response.status_code == 200
        [call] = [c for c in backend.calls if c.request.url == CHAT_URL]
        assert "x-api-key" not in {name.lower() for name in call.request.headers}
        assert "k-1" not in str(call.request.headers)


def test_count_tokens_estimates_without_calling_the_backend(client, backend):
    body = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "x" * 400}],
        "tools": [ANTHROPIC_WEATHER_TOOL],
    }
    response = client.post("/v1/messages/count_tokens?beta=true", json=body)
    assert response.status_code == 200
    counted = response.get_json()["input_tokens"]
    assert 100 < counted < 200  # 400 characters of text, 4 a token, plus the tool
    assert not [c for c in backend.calls if c.request.url == CHAT_URL]


def test_count_tokens_of_an_unknown_model_is_404(client, backend):
    response = client.post("/v1/messages/count_tokens", json={**BODY, "model": "nope"})
    assert anthropic_error(response, 404)["type"] == "not_found_error"


@pytest.mark.parametrize("settings", [NATIVE])
def test_a_native_backend_gets_the_request_unchanged(client, backend):
    raw = json.dumps({**BODY, "cache_control": {"type": "ephemeral"}}).encode()
    backend.add(responses.POST, f"{BACKEND}/messages?beta=true", json={"id": "native"})
    response = client.post(
        "/v1/messages?beta=true",
        data=raw,
        content_type="application/json",
        headers={"x-api-key": "client-key", "Authorization": "Bearer client-key"},
        environ_overrides={"RAW_URI": "/v1/messages?beta=true"},
    )
    assert response.get_json() == {"id": "native"}
    [call] = [c for c in backend.calls if c.request.url.startswith(f"{BACKEND}/messages")]
    assert call.request.body == raw
    assert "client-key" not in str(call.request.headers)


MIXED = Settings(
    backend_specs=(
        BackendSpec("native", BACKEND, None, "llama-server-native", 5.0, 300.0),
        BackendSpec("other", "http://other.test/v1", None, "generic", 5.0, 300.0),
    )
)


@pytest.mark.parametrize("settings", [MIXED])
def test_with_a_mix_of_backends_the_api_is_translated_for_all(client, backend):
    backend.add(responses.POST, CHAT_URL, json=completion("Hello!"))
    backend.add(responses.GET, "http://other.test/v1/models", json={"data": []})
    response = client.post("/v1/messages", json=BODY)
    assert response.get_json()["content"] == [{"type": "text", "text": "Hello!"}]
    assert not [c for c in backend.calls if "/messages" in c.request.url]


def test_streams_are_counted_per_endpoint(client, backend):
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"endpoint": "/v1/messages", "model": "llama3.2"}
    before = count("proxy_time_to_first_token_seconds_count", **labels)
    tokens = count("proxy_completion_tokens_total", **labels)
    add_stream(backend, CHAT_URL, chat_stream("a", "b"))
    client.post("/v1/messages", json={**BODY, "stream": True}).get_data()
    assert count("proxy_time_to_first_token_seconds_count", **labels) == before + 1
    assert count("proxy_completion_tokens_total", **labels) == tokens + 3
    outcome = {"endpoint": "/v1/messages", "outcome": "completed"}
    assert count("proxy_stream_outcomes_total", **outcome) >= 1


@pytest.mark.parametrize("settings", [LLAMA_CPP_PYTHON])
def test_a_flavour_that_cannot_stream_tools_gets_the_answer_replayed(client, backend):
    whole(
        backend,
        completion(
            None,
            finish="tool_calls",
            tool_calls=[
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        ),
    )
    response = client.post(
        "/v1/messages", json={**BODY, "stream": True, "tools": [ANTHROPIC_WEATHER_TOOL]}
    )
    got = sse_events(response.data)
    assert "stream" not in sent(backend, CHAT_URL)
    starts = [data["content_block"] for name, data in got if name == "content_block_start"]
    assert starts == [{"type": "tool_use", "id": "toolu_c1", "name": "get_weather", "input": {}}]
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("settings", [DEFAULTED])
def test_claude_names_served_by_the_default_model_fit_its_context(client, backend):
    # Claude Code asks for 32,000 tokens of a model whose window is 8,192 (vLLM's max_model_len
    # in the listing): the limit is left to the backend instead of being refused there.
    whole(backend)
    response = client.post(
        "/v1/messages", json={**BODY, "model": "claude-sonnet-4-5", "max_tokens": 32000}
    )
    assert response.get_json()["model"] == "claude-sonnet-4-5"
    body = sent(backend, CHAT_URL)
    assert body["model"] == "llama3.2"
    assert "max_tokens" not in body
