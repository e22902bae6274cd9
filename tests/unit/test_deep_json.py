"""JSON nested deeper than Python's parser recurses, wherever the proxy reads JSON it did not
write: every such place must say what is wrong (a 400 for a client's, a 502 or the API's
in-band error for a backend's), never let RecursionError out as a 500."""

from __future__ import annotations

import zlib

import pytest
import requests

from app.backend_errors import parse_json_body
from app.errors import BackendError, BadRequest, backend_message
from app.translate.chat_stream import StreamError, parse_arguments, parse_event
from app.translate.ollama import context

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_backend_answer_nested_too_deeply_is_a_502() -> None:
    response = requests.Response()
    response._content = b'{"choices": ' + DEEP + b"}"
    with pytest.raises(BackendError, match="invalid JSON"):
        parse_json_body(response, "/chat/completions")


def test_a_stream_event_nested_too_deeply_is_a_stream_error() -> None:
    with pytest.raises(StreamError, match="malformed event"):
        parse_event(DEEP)


def test_tool_call_arguments_nested_too_deeply_are_invalid_arguments() -> None:
    with pytest.raises(StreamError, match="invalid tool call arguments"):
        parse_arguments("f", DEEP.decode())


def test_an_error_body_nested_too_deeply_is_summarised() -> None:
    assert backend_message(DEEP[:60_000], "HTTP 500 from /x") == "HTTP 500 from /x"


def test_a_context_carrying_json_nested_too_deeply_is_damaged() -> None:
    # A client can pack anything into a context: it is the client's input, so a 400.
    data = zlib.compress(DEEP)
    padded = data + b"\0" * (-len(data) % 3)
    body = [int.from_bytes(padded[i : i + 3], "big") for i in range(0, len(padded), 3)]
    with pytest.raises(BadRequest, match="damaged"):
        context.decode([context.MARKER, context.VERSION, len(data), *body])
