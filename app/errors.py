"""One exception hierarchy and the only place that formats an error body.

Routes and the backend client raise `ProxyError`s; the handlers registered here render them in
Ollama's shape (`{"error": "..."}`) under `/` and `/api/*`, and in OpenAI's shape under `/v1/*`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

JSON_MIMETYPE = "application/json; charset=utf-8"


class ProxyError(Exception):
    """An error with the HTTP status and message a client should see."""

    status = 500

    def __init__(
        self, message: str, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ProxyError):
    status = 400


class NotFound(ProxyError):
    status = 404


class BackendError(ProxyError):
    """The backend answered with an error, or could not be reached (status 502/503/504)."""

    status = 502


def model_not_found(name: str) -> NotFound:
    # Ollama's wording; clients key on the 404 and on "not found" (ollama run then pulls).
    return NotFound(f'model "{name}" not found, try pulling it first')


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


def openai_error_body(message: str, status: int) -> bytes:
    error = {
        "message": message,
        "type": _OPENAI_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        ),
        "param": None,
        "code": None,
    }
    return json.dumps({"error": error}, separators=(",", ":")).encode()


def error_response(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """The error in the shape the current path's clients expect."""
    if request.path.startswith("/v1/"):
        body = openai_error_body(message, status)
    else:
        body = ollama_error_body(message)
    response = Response(body, status=status, mimetype=JSON_MIMETYPE)
    if headers:
        response.headers.update(headers)
    return response


def backend_message(body: bytes, fallback: str) -> str:
    """The human message inside an OpenAI-style error body, whatever its dialect.

    Handles `{"error": {"message": ...}}` (OpenAI, vLLM, llama.cpp, OpenRouter),
    `{"error": "..."}`, vLLM < 0.10.1's flat `{"object": "error", "message": ...}` and plain text.
    """
    try:
        document: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] or fallback
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if isinstance(document.get("message"), str):
            return str(document["message"])
        if isinstance(document.get("detail"), str):  # FastAPI-style servers
            return str(document["detail"])
    return fallback


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProxyError)
    def on_proxy_error(error: ProxyError) -> Response:
        if error.status >= 500:
            log.warning("request failed: %s", error.message, extra={"status": error.status})
        return error_response(error.message, error.status, error.headers)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            message = f"404 page not found: no endpoint {request.method} {request.path}"
        elif status == 405:
            message = f"method {request.method} not allowed for {request.path}"
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
