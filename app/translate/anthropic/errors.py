"""Anthropic's error shape: `{"type": "error", "error": {"type", "message"}}`.

The SDKs pick their exception class from the HTTP status; `error.type` is what Claude Code and
users read. Used for HTTP errors (app/error_handlers.py) and for the `error` event that ends a
stream which has started.
"""

from __future__ import annotations

from typing import Any

PATH = "/v1/messages"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    # A backend that is down or a breaker that is open: Anthropic's word for "try later".
    503: "overloaded_error",
    504: "timeout_error",
}


def error_object(message: str, status: int) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def is_anthropic_path(path: str) -> bool:
    """`/v1/messages` and what lies under it (`count_tokens`): Anthropic's clients."""
    return path == PATH or path.startswith(PATH + "/")
