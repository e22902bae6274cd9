"""Flask responses in the framings the APIs answer with: one JSON object, or a stream."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from flask import Flask, Response

from .wire import ndjson

JSON_MIMETYPE = "application/json; charset=utf-8"
NDJSON_MIMETYPE = "application/x-ndjson"
SSE_MIMETYPE = "text/event-stream"
# nginx buffers proxied responses unless told not to; a buffered stream arrives all at once.
STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def json_response(obj: Any, status: int = 200) -> Response:
    """A single JSON object, as Ollama sends every answer that is not a stream."""
    return Response(ndjson(obj), status=status, mimetype=JSON_MIMETYPE)


def encoded_json_response(body: bytes) -> Response:
    """`json_response` of an object already encoded (by `ndjson`)."""
    return Response(body, mimetype=JSON_MIMETYPE)


def stream_response(body: Iterable[bytes] | bytes, mimetype: str) -> Response:
    """A streamed answer; `bytes` when the whole stream is already known (one write)."""
    if isinstance(body, bytes):
        return Response(body, mimetype=mimetype)
    return Response(body, mimetype=mimetype, headers=STREAM_HEADERS)


# Status lines as Go's net/http (and so Ollama) writes them; Werkzeug writes "404 NOT FOUND",
# and some clients show the reason phrase to their users.
_GO_PHRASES = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Request Entity Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


def go_status_lines(app: Flask) -> None:
    @app.after_request
    def reason_phrase(response: Response) -> Response:
        code = response.status_code
        phrase = _GO_PHRASES.get(code)
        if phrase is None:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                return response  # a backend's own status, relayed: its phrase is unknown
        response.status = f"{code} {phrase}"
        return response
