"""Builders for backend answers and readers for proxy answers, shared by the API tests."""

from __future__ import annotations

import json
import re
from typing import Any

import responses
from werkzeug.test import TestResponse

BACKEND = "http://backend.test/v1"
CHAT_URL = f"{BACKEND}/chat/completions"
COMPLETIONS_URL = f"{BACKEND}/completions"
EMBEDDINGS_URL = f"{BACKEND}/embeddings"
MODELS_URL = f"{BACKEND}/models"

JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
# Go's RFC3339Nano in UTC: fractional seconds optional, the Z mandatory.
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
# A 1x1 PNG, raw base64 as Ollama clients send images.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


USER = [{"role": "user", "content": "Hi"}]


def chat(client, **fields):
    """POST /api/chat; model llama3.2 and one user message unless the test says otherwise."""
    return client.post("/api/chat", json={"model": "llama3.2", "messages": USER, **fields})


def sse(*events: dict[str, Any] | str, done: bool = True) -> bytes:
    """An SSE body: each event a `data:` line then a blank line, `[DONE]` last."""
    out = b""
    for event in events:
        payload = event if isinstance(event, str) else json.dumps(event)
        out += b"data: " + payload.encode() + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def delta(
    content: str | None = None,
    *,
    finish: str | None = None,
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """One chat.completion.chunk event."""
    body: dict[str, Any] = {}
    if role is not None:
        body["role"] = role
    if content is not None:
        body["content"] = content
    if reasoning is not None:
        body["reasoning"] = reasoning
    if tool_calls is not None:
        body["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "llama3.2",
        "choices": [{"index": 0, "delta": body, "finish_reason": finish}],
    }


def usage_event(usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": usage or USAGE,
    }


def chat_stream(*texts: str, finish: str = "stop") -> bytes:
    """A plain streamed answer: role chunk, one chunk per text, finish chunk, usage, [DONE]."""
    events = [delta("", role="assistant")]
    events += [delta(text) for text in texts]
    events += [delta(finish=finish), usage_event()]
    return sse(*events)


def completion(
    content: str | None = "Hello!",
    *,
    finish: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
) -> dict[str, Any]:
    """A whole (non-streamed) chat.completion."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    if reasoning is not None:
        message["reasoning"] = reasoning
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "llama3.2",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE,
    }


def whole(mock: responses.RequestsMock, answer: Any = None) -> None:
    """The backend answers the next chat completion with one whole JSON object."""
    mock.add(responses.POST, CHAT_URL, json=completion() if answer is None else answer)


def add_stream(mock: responses.RequestsMock, url: str, body: bytes, status: int = 200) -> None:
    mock.add(responses.POST, url, body=body, status=status, content_type="text/event-stream")


def sent(mock: responses.RequestsMock, url: str, index: int = -1) -> dict[str, Any]:
    """The JSON body the proxy sent to `url` (the last such call unless told)."""
    bodies = [call.request.body for call in mock.calls if call.request.url == url]
    assert bodies, f"the proxy never called {url}"
    body = bodies[index]
    return json.loads(body)


def calls_to(mock: responses.RequestsMock, url: str) -> int:
    return sum(1 for call in mock.calls if call.request.url == url)


def lines(response: TestResponse) -> list[dict[str, Any]]:
    """An NDJSON answer as objects; fails unless every line is one compact JSON object."""
    assert response.status_code == 200
    assert response.content_type == NDJSON_TYPE
    raw = response.data
    assert raw.endswith(b"\n"), "the last NDJSON line must be terminated"
    parsed = []
    for line in raw.split(b"\n")[:-1]:
        assert line, "NDJSON must not contain blank lines"
        obj = json.loads(line)
        assert isinstance(obj, dict)
        parsed.append(obj)
    return parsed


def single(response: TestResponse, status: int = 200) -> dict[str, Any]:
    """A one-object JSON answer with Ollama's content type."""
    assert response.status_code == status, response.data
    assert response.content_type == JSON_TYPE
    obj = json.loads(response.data)
    assert isinstance(obj, dict)
    return obj


def ollama_error(response: TestResponse, status: int) -> str:
    """The message of an Ollama-shaped error answer: exactly `{"error": "<text>"}`."""
    body = single(response, status)
    assert list(body) == ["error"], body
    assert isinstance(body["error"], str)
    assert body["error"]
    return body["error"]


def assert_metrics(obj: dict[str, Any]) -> None:
    """Ollama's metrics: integer nanoseconds and counts, positive (zeros are omitted)."""
    for name in METRICS:
        if name in obj:
            assert type(obj[name]) is int, (name, obj[name])
            assert obj[name] > 0, (name, obj[name])
    assert "total_duration" in obj
