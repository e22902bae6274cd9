"""Builders for backend answers and readers for proxy answers, shared by the API tests."""

from __future__ import annotations

import json
import re
from typing import Any

import responses
from werkzeug.test import TestResponse

from harness import openai_events as events
from harness.openai_events import sse
from tests.checks import chat_body, ndjson_objects

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
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


USER = [{"role": "user", "content": "Hi"}]


def chat(client, **fields):
    """POST /api/chat; model llama3.2 and one user message unless the test says otherwise."""
    return client.post("/api/chat", json={**chat_body(model="llama3.2"), **fields})


def delta(
    content: str | None = None,
    *,
    finish: str | None = None,
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """One chat.completion.chunk event with the delta fields given."""
    fields = {"role": role, "content": content, "reasoning": reasoning, "tool_calls": tool_calls}
    body = {key: value for key, value in fields.items() if value is not None}
    return events.chunk(body, finish, model="llama3.2")


def usage_event(usage: dict[str, int] | None = None) -> dict[str, Any]:
    totals = usage or USAGE
    return events.usage_chunk(totals["prompt_tokens"], totals["completion_tokens"])


def chat_stream(*texts: str, finish: str = "stop") -> bytes:
    """A plain streamed answer: role chunk, one chunk per text, finish chunk, usage, [DONE]."""
    answer = [delta("", role="assistant")]
    answer += [delta(text) for text in texts]
    answer += [delta(finish=finish), usage_event()]
    return sse(*answer)


def completion(content: str | None = "Hello!", **fields: Any) -> dict[str, Any]:
    """A whole (non-streamed) chat.completion."""
    return events.completion(content, model="llama3.2", usage=USAGE, **fields)


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
    return ndjson_objects(response.data)


def single(response: TestResponse, status: int = 200) -> dict[str, Any]:
    """A one-object JSON answer with Ollama's content type."""
    assert response.status_code == status, response.data
    assert response.content_type == JSON_TYPE
    obj = json.loads(response.data)
    assert isinstance(obj, dict)
    return obj


def assert_metrics(obj: dict[str, Any], *, every: bool = False) -> None:
    """Ollama's metrics: integer nanoseconds and counts, positive (zeros are omitted); with
    `every`, all six present, as in Ollama's final answers (clients validate them)."""
    for name in METRICS:
        if name in obj:
            assert type(obj[name]) is int, (name, obj[name])
            assert obj[name] > 0, (name, obj[name])
    assert "total_duration" in obj
    if every:
        assert set(METRICS) <= set(obj), set(METRICS) - set(obj)
