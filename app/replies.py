"""Flask responses in the framings the APIs answer with: one JSON object, or a stream."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Response

from .wire import ndjson

JSON_MIMETYPE = "application/json; charset=utf-8"
NDJSON_MIMETYPE = "application/x-ndjson"
SSE_MIMETYPE = "text/event-stream"
# nginx buffers proxied responses unless told not to; a buffered stream arrives all at once.
STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def json_response(obj: Any, status: int = 200) -> Response:
    """A single JSON object, as Ollama sends every answer that is not a stream."""
    return Response(ndjson(obj), status=status, mimetype=JSON_MIMETYPE)


def stream_response(body: Iterable[bytes] | bytes, mimetype: str) -> Response:
    """A streamed answer; `bytes` when the whole stream is already known (one write)."""
    if isinstance(body, bytes):
        return Response(body, mimetype=mimetype)
    return Response(body, mimetype=mimetype, headers=STREAM_HEADERS)
