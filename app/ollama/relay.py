"""Calling the backend for a generation and answering in Ollama's framing.

Streams: the first backend event is read before the response starts, so an error that comes
first still gets its HTTP status (G8); after that, a failure becomes a final `{"error": ...}`
line, never a `done: true` that would hide a cut-off answer (G7). The backend connection is
closed in the generator's `finally`, which gunicorn reaches as soon as a write to a departed
client fails: the model server stops generating at once (stack.md §2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests
from flask import Response
from greenlet import GreenletExit
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ..backend import Backend, parse_json_body
from ..errors import JSON_MIMETYPE, BackendError
from ..observe import Exchange
from ..streaming import SSEProtocolError, iter_raw, iter_sse_data, ndjson, now_rfc3339
from .responses_in import StreamError, Translator

NDJSON_MIMETYPE = "application/x-ndjson"
# nginx buffers proxied responses unless told not to; a buffered stream arrives all at once.
STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(ndjson(obj), status=status, mimetype=JSON_MIMETYPE)


def load_reply(model: str, keep_alive: float | None, *, chat: bool) -> Response:
    """Ollama's answer to an empty prompt or message list: the model is (un)loaded (G4).

    One JSON object even when streaming was asked for, as Ollama does.
    """
    reply: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
    if chat:
        reply["message"] = {"role": "assistant", "content": ""}
    else:
        reply["response"] = ""
    reply["done"] = True
    reply["done_reason"] = "unload" if keep_alive == 0 else "load"
    return json_response(reply)


def whole_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> dict[str, Any]:
    exchange = Exchange(body.get("model"))
    response = backend.post(path, body)
    completion = parse_json_body(response, path)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {path}")
    try:
        result = translator.complete(completion)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None
    exchange.tokens(translator.usage)
    return result


def replay_as_stream(result: dict[str, Any], *, chat: bool) -> Response:
    """A whole answer in Ollama's stream framing: one chunk with everything the model said, then
    the final chunk. For backends that cannot stream a request (see flavours.py)."""
    said_keys = (
        ("message", "logprobs") if chat else ("response", "thinking", "tool_calls", "logprobs")
    )
    said = {"model": result["model"], "created_at": result["created_at"]}
    final = dict(result)
    for key in said_keys:
        if key in final:
            said[key] = final.pop(key)
    said["done"] = False
    if chat:
        final["message"] = {"role": "assistant", "content": ""}
    else:
        said.setdefault("response", "")
        final["response"] = ""
    return Response(ndjson(said) + ndjson(final), mimetype=NDJSON_MIMETYPE)


def stream_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> Response:
    exchange = Exchange(body.get("model"))
    response = backend.post(path, body, stream=True)
    translator.timing.backend_answered()
    events = _events(response, backend)
    try:
        head, finished = _head(events, translator)
    except StreamError as exc:
        response.close()
        raise BackendError(exc.message, exc.status) from None
    except BaseException:
        response.close()
        raise
    if finished:
        response.close()
        # The whole answer (tool calls only, say) goes out in one write: a stream all the same.
        exchange.stream_started()
        exchange.first_chunk()
        exchange.stream_ended("completed", translator.usage, translator.pieces)
        return Response(b"".join(map(ndjson, head)), mimetype=NDJSON_MIMETYPE)
    return Response(
        _ndjson(head, events, translator, response, exchange),
        mimetype=NDJSON_MIMETYPE,
        headers=STREAM_HEADERS,
    )


def _head(
    events: Iterator[dict[str, Any]], translator: Translator
) -> tuple[list[dict[str, Any]], bool]:
    """The chunks up to the first output, and whether the stream is already over.

    A stream that ends before any output (all tool calls, or a backend that fails with an empty
    200 as llama-cpp-python does) is finished here, so its errors still get an HTTP status.
    """
    for event in events:
        chunks = translator.feed(event)
        if chunks:
            return chunks, False
    return _tail(translator), True


def _tail(translator: Translator) -> list[dict[str, Any]]:
    calls = translator.tool_chunk()
    return [calls, translator.final()] if calls is not None else [translator.final()]


def _events(response: requests.Response, backend: Backend) -> Iterator[dict[str, Any]]:
    """Backend SSE events as dicts; every way the stream can break becomes a StreamError."""
    try:
        for payload in iter_sse_data(iter_raw(response)):
            try:
                event = json.loads(payload)
            except ValueError:
                raise StreamError(
                    f"the backend sent a malformed event: {payload[:100]!r}"
                ) from None
            if not isinstance(event, dict):
                raise StreamError(f"the backend sent a malformed event: {payload[:100]!r}")
            yield event
    except ReadTimeoutError as exc:
        backend.stream_broke(exc, "stream_timeout")
        raise StreamError(
            f"the backend sent nothing for {backend.timeout[1]:g}s in the middle of the answer"
        ) from None
    except (Urllib3Error, requests.RequestException, OSError) as exc:
        backend.stream_broke(exc)
        raise StreamError(
            "the connection to the backend broke in the middle of the answer"
        ) from None
    except SSEProtocolError as exc:
        raise StreamError(f"the backend's event stream is malformed: {exc}") from None


def _ndjson(
    head: list[dict[str, Any]],
    events: Iterator[dict[str, Any]],
    translator: Translator,
    response: requests.Response,
    exchange: Exchange,
) -> Iterator[bytes]:
    exchange.stream_started()
    outcome, error = "error", None
    try:
        yield ndjson(head[0])  # the first output: `_head` stops at it
        exchange.first_chunk()
        for chunk in head[1:]:
            yield ndjson(chunk)
        for event in events:
            for chunk in translator.feed(event):
                yield ndjson(chunk)
        for chunk in _tail(translator):
            yield ndjson(chunk)
        outcome = "completed"
    except StreamError as exc:
        outcome, error = "backend_error", exc.message
        yield ndjson({"error": exc.message})
    except GreenletExit:
        # gunicorn kills what still runs when the graceful timeout ends: tell the client the
        # answer is cut off, then end the response (the worker exits right after).
        outcome = "shutdown"
        yield ndjson({"error": "the proxy is shutting down; the answer was cut off"})
    except GeneratorExit:
        outcome = "client_disconnect"  # the write to the client failed: gunicorn closed us
        raise
    finally:
        response.close()
        exchange.stream_ended(outcome, translator.usage, translator.pieces, error)
