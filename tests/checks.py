"""What every suite checks in the proxy's answers, whether they come from Flask's test client
(API tests) or from httpx over a socket (end-to-end tests): the NDJSON framing, and the error
shapes of the Ollama and OpenAI APIs."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Answer(Protocol):
    """What werkzeug's TestResponse and httpx.Response have in common."""

    status_code: int

    @property
    def headers(self) -> Any: ...


def body_of(response: Answer) -> bytes:
    data = getattr(response, "data", None)  # werkzeug
    return data if isinstance(data, bytes) else response.content  # type: ignore[attr-defined]


def chat_body(text: str = "Hi", *, model: str = "fake-chat", **fields: Any) -> dict[str, Any]:
    """A chat request with one user message (Ollama's and OpenAI's have the same shape)."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


def ndjson_objects(raw: bytes) -> list[dict[str, Any]]:
    """An NDJSON body as objects: every line one compact JSON object, no blank lines, the last
    one terminated."""
    assert raw.endswith(b"\n"), f"unterminated NDJSON: {raw[-200:]!r}"
    parsed = []
    for line in raw.split(b"\n")[:-1]:
        assert line, "NDJSON must not contain blank lines"
        obj = json.loads(line)
        assert isinstance(obj, dict)
        parsed.append(obj)
    return parsed


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """A named-event SSE body as (event, data) pairs: every event has its `event:` line (the
    Anthropic SDKs drop events without one) naming the `type` its data carries; comment lines
    (keep-alives) are skipped."""
    events = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2, block
        assert lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name, block
        events.append((name, data))
    return events


def translated(translator: Any, *chunks: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events an SSE translator makes of backend chunks fed one by one, then its tail."""
    raw = b"".join(translator.event(json.dumps(chunk).encode()) for chunk in chunks)
    return sse_events(raw + translator.tail())


def anthropic_error(response: Answer, status: int) -> dict[str, Any]:
    """The error object of an Anthropic error answer: `{"type": "error", "error": {type,
    message}}` as JSON."""
    assert response.status_code == status, (response.status_code, body_of(response)[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(body_of(response))
    assert body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"}, body
    assert body["error"]["message"]
    return dict(body["error"])


def _json_error(response: Answer, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, body_of(response)[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(body_of(response))
    assert list(body) == ["error"], body
    assert isinstance(body, dict)
    return body


def ollama_error(response: Answer, status: int) -> str:
    """The message of an Ollama error answer: exactly `{"error": "<text>"}` as JSON."""
    message = _json_error(response, status)["error"]
    assert isinstance(message, str)
    assert message
    return message


def openai_error(response: Answer, status: int) -> dict[str, Any]:
    """The error object of an OpenAI error answer: `{"error": {message, type, param, code}}`."""
    error = _json_error(response, status)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)
