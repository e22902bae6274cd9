"""The only place that renders an HTTP error: each API's clients get their own shape.

Anthropic's `{"type": "error", "error": {type, message}}` under `/v1/messages`, OpenAI's
`{"error": {message, type, param, code}}` elsewhere under `/v1/*`, Ollama's `{"error": "..."}`
under `/` and `/api/*`. Every ProxyError, every Werkzeug HTTP error (404, 405, 413) and every
unexpected exception ends here.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .errors import ProxyError
from .guards import method_of
from .replies import JSON_MIMETYPE
from .translate.anthropic.errors import error_object as anthropic_error_object
from .translate.anthropic.errors import is_anthropic_path

log = logging.getLogger(__name__)

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def ollama_error_body(message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode()


def openai_error_body(message: str, status: int, code: str | None = None) -> bytes:
    error = {
        "message": message,
        "type": _OPENAI_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        ),
        "param": None,
        "code": code,
    }
    return json.dumps({"error": error}, separators=(",", ":")).encode()


def error_response(
    message: str, status: int, headers: dict[str, str] | None = None, code: str | None = None
) -> Response:
    """The error in the shape the current path's clients expect."""
    path = request.path
    if is_anthropic_path(path):
        body = json.dumps(anthropic_error_object(message, status), separators=(",", ":")).encode()
    elif path.startswith("/v1/"):
        body = openai_error_body(message, status, code)
    else:
        body = ollama_error_body(message)
    response = Response(body, status=status, mimetype=JSON_MIMETYPE)
    if headers:
        response.headers.update(headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProxyError)
    def on_proxy_error(error: ProxyError) -> Response:
        if error.status >= 500:
            log.warning("request failed: %s", error.message, extra={"status": error.status})
        return error_response(error.message, error.status, error.headers, error.code)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            message = f"404 page not found: no endpoint {method_of(request.environ)} {request.path}"
        elif status == 405:
            message = f"method {method_of(request.environ)} not allowed for {request.path}"
        elif status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large: the limit is {limit} bytes"
        else:
            message = error.description or error.name
        response = error_response(message, status)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        # Logged with the stack for operators; the client gets no internals.
        log.exception("unhandled error")
        return error_response("internal proxy error; the request ID is in the logs", 500)
