"""What a backend's failures mean: an error answer, a body that is not JSON, a request that
failed on the way, each turned into the error a client sees and named without the URL dumps
requests puts in its messages. backend.py decides when; this module says what."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .errors import BackendError, ProxyError, backend_message, client_fault

# Error bodies are read whole to extract the message; a hostile backend cannot make us hold more.
MAX_ERROR_BODY = 64 * 1024
# Answers that say the backend (or the gateway in front of it) is down: the breaker counts them.
DOWN_STATUSES = frozenset({502, 503, 504})
FAILOVER_STATUSES = DOWN_STATUSES | {429}


def parse_json_body(response: requests.Response, what: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):  # nested too deeply is not JSON this proxy can use
        raise BackendError(f"backend sent invalid JSON for {what}", 502) from None


def raise_for_status(response: requests.Response) -> None:
    """Turns a backend error answer into the ProxyError an Ollama client should see."""
    status = response.status_code
    if status < 400:
        return
    # The first chunk only, whether the body was streamed or already read.
    body = next(response.iter_content(MAX_ERROR_BODY), b"")
    response.close()
    # No error page is ever passed on: a summary (status and path) stands in for HTML.
    message = backend_message(body, f"HTTP {status} from {urlsplit(response.url).path}")
    retry_after = response.headers.get("Retry-After")
    headers = {"Retry-After": retry_after} if retry_after else None
    # A rate limit or a gateway error: the request was not worked on, another deployment may.
    failover = status in FAILOVER_STATUSES
    if status == 500 and client_fault(message):
        # Some servers (llama.cpp's, llama-cpp-python's) answer a request they cannot take with
        # 500; Ollama answers those 400, and a client should not retry them.
        raise ProxyError(message, 400)
    if status < 500:
        # 4xx keep status and message (a bad request, a context overflow, a rate limit...);
        # 422 is FastAPI's validation status, which Ollama clients know as 400.
        raise ProxyError(message, 400 if status == 422 else status, headers, failover=failover)
    if status in (503, 504):
        raise BackendError(
            f"backend unavailable (HTTP {status}): {message}", status, headers, failover=failover
        )
    raise BackendError(f"backend error (HTTP {status}): {message}", 502, failover=failover)


def read_timed_out(exc: requests.RequestException) -> bool:
    """The backend accepted the connection and then said nothing in time. requests reports that
    as ReadTimeout, or as a ConnectionError when urllib3's retry policy gave up on it."""
    if isinstance(exc, requests.ReadTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)


def is_stale_socket(exc: requests.ConnectionError) -> bool:
    return bool(exc.args) and isinstance(exc.args[0], ProtocolError)


def failure_reason(exc: requests.RequestException) -> str:
    """A short cause ("connection refused") without the URL dump requests puts in messages."""
    if isinstance(exc, requests.ConnectTimeout):
        return "no connection within the connect timeout"
    text = str(exc)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed"),
        ("Connection aborted", "connection closed by the backend"),
        ("Connection reset", "connection reset by the backend"),
        ("No route to host", "no route to host"),
    ):
        if marker in text:
            return reason
    return type(exc).__name__
