"""Forward an OpenAI request byte for byte and relay the answer as it arrives.

The body is never parsed or re-serialised (openai-python asks for base64 embeddings and expects
them back untouched); status, content type and error bodies are the backend's own. Only the
hop-by-hop headers of each leg are dropped, as RFC 9110 §7.6.1 requires of a proxy.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests
from flask import Response, request
from greenlet import GreenletExit
from urllib3.exceptions import HTTPError as Urllib3Error

from ..backend import Backend
from ..body import raw_body
from ..error_handlers import openai_error_body
from ..observe import Exchange
from ..services import services
from ..stream import iter_raw
from . import bp

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers that describe this leg or the client only, not the request to the backend.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "cookie", "authorization"}
# gunicorn writes its own Date and Server headers; relaying the backend's would duplicate them.
_NOT_RELAYED = HOP_BY_HOP | {"date", "server"}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("/<path:path>", methods=_METHODS)
def forward(path: str) -> Response:
    service = services()
    # Headers the client's Connection header names are hop-by-hop too (RFC 9110 §7.6.1).
    named = {name.strip().lower() for name in request.headers.get("Connection", "").split(",")}
    headers = {
        name: value
        for name, value in request.headers
        if name.lower() not in _NOT_FORWARDED and name.lower() not in named
    }
    authorization = request.headers.get("Authorization")
    if authorization and not service.settings.api_key and not service.settings.api_keys:
        # With no key of its own and no keys of its own to check, the proxy is transparent:
        # the client's key reaches the backend.
        headers["Authorization"] = authorization
    target = "/" + path
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    body = raw_body()
    response = service.backend.send(
        request.method, target, body or None, stream=True, headers=headers
    )
    sse = response.headers.get("Content-Type", "").startswith("text/event-stream")
    # SSE answers are streams in the metrics; the body is not parsed, so the model is unknown.
    exchange = Exchange(None) if sse else None
    relayed = Response(_relay(response, service.backend, exchange), status=response.status_code)
    for name, value in response.headers.items():
        if name.lower() not in _NOT_RELAYED:
            relayed.headers[name] = value
    if sse:
        relayed.headers["X-Accel-Buffering"] = "no"
    return relayed


def _relay(
    response: requests.Response, backend: Backend, exchange: Exchange | None
) -> Iterator[bytes]:
    if exchange is not None:
        exchange.stream_started()
    outcome, error = "error", None
    try:
        # decode=False: compressed bytes stay compressed, matching the relayed Content-Encoding.
        chunks = iter_raw(response, decode=False)
        first = next(chunks, None)
        if first is not None:
            yield first
            if exchange is not None:
                exchange.first_chunk()
            yield from chunks
        outcome = "completed"
        backend.stream_completed()
    except (Urllib3Error, requests.RequestException, OSError) as exc:
        backend.stream_broke(exc)
        outcome = "backend_error"
        error = "the connection to the backend broke in the middle of the answer"
        # The status is sent already. An SSE client gets an error event (the openai SDK raises
        # on it); a body with a Content-Length arrives visibly short.
        if exchange is not None:
            yield b"data: " + openai_error_body(error, 502) + b"\n\n"
    except GeneratorExit:
        outcome = "client_disconnect"
        raise
    except GreenletExit:
        outcome = "shutdown"
        raise
    finally:
        response.close()
        if exchange is not None:
            exchange.stream_ended(outcome, error=error, count_tokens=False)
