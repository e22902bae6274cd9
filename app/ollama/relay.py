"""Calling the backend for a generation and answering in Ollama's framing.

Streams: the first backend event is read before the response starts, so an error that comes
first still gets its HTTP status (G8); after that, a failure becomes a final `{"error": ...}`
line, never a `done: true` that would hide a cut-off answer (G7). The backend connection is
closed in the generator's `finally`, which gunicorn reaches as soon as a write to a departed
client fails: the model server stops generating at once (stack.md §2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import requests
from flask import Response
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ..backend import Backend, parse_json_body
from ..errors import JSON_MIMETYPE, BackendError
from ..streaming import SSEProtocolError, iter_raw, iter_sse_data, ndjson, now_rfc3339
from .responses_in import StreamError, Translator

log = logging.getLogger(__name__)

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
    response = backend.post(path, body)
    completion = parse_json_body(response, path)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {path}")
    try:
        return translator.complete(completion)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None


def stream_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> Response:
    response = backend.post(path, body, stream=True)
    translator.timing.backend_answered()
    events = _events(response, backend)
    first: list[dict[str, Any]] = []
    try:
        for event in events:
            first = translator.feed(event)
            if first:
                break
    except StreamError as exc:
        response.close()
        raise BackendError(exc.message, exc.status) from None
    except BaseException:
        response.close()
        raise
    return Response(
        _ndjson(first, events, translator, response),
        mimetype=NDJSON_MIMETYPE,
        headers=STREAM_HEADERS,
    )


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
        backend.breaker.record_failure(exc)
        raise StreamError(
            f"the backend sent nothing for {backend.timeout[1]:g}s in the middle of the answer"
        ) from None
    except (Urllib3Error, requests.RequestException, OSError) as exc:
        backend.breaker.record_failure(exc)
        raise StreamError(
            "the connection to the backend broke in the middle of the answer"
        ) from None
    except SSEProtocolError as exc:
        raise StreamError(f"the backend's event stream is malformed: {exc}") from None


def _ndjson(
    first: list[dict[str, Any]],
    events: Iterator[dict[str, Any]],
    translator: Translator,
    response: requests.Response,
) -> Iterator[bytes]:
    try:
        for chunk in first:
            yield ndjson(chunk)
        for event in events:
            for chunk in translator.feed(event):
                yield ndjson(chunk)
        calls = translator.tool_chunk()
        if calls is not None:
            yield ndjson(calls)
        yield ndjson(translator.final())
    except StreamError as exc:
        log.warning("stream ended with an error: %s", exc.message)
        yield ndjson({"error": exc.message})
    finally:
        response.close()
