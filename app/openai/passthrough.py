"""Forward an OpenAI request byte for byte and relay the answer as it arrives.

The body is never parsed or re-serialised (openai-python asks for base64 embeddings and expects
them back untouched); status, content type and error bodies are the backend's own. Only the
hop-by-hop headers of each leg are dropped, as RFC 9110 §7.6.1 requires of a proxy.
"""

from __future__ import annotations

from flask import Response, request

from ..body import raw_body
from ..error_handlers import openai_error_body
from ..observe import Exchange
from ..services import services
from ..stream import Relay, raw_batches
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
    # The body is not parsed: the model is unknown, and the tokens are not counted.
    relay = Relay(
        response,
        service.backend,
        Verbatim(sse),
        Exchange(None) if sse else None,  # SSE answers are streams in the metrics
        batches=raw_batches(response),
        count_tokens=False,
    )
    relayed = relay.respond(response.headers.get("Content-Type", "application/octet-stream"))
    relayed.status_code = response.status_code
    for name, value in response.headers.items():
        if name.lower() not in _NOT_RELAYED:
            relayed.headers[name] = value
    if not sse:
        relayed.headers.pop("X-Accel-Buffering", None)
        relayed.headers.pop("Cache-Control", None)
    return relayed


class Verbatim:
    """The backend's bytes unchanged. A stream that breaks after it started ends, for an SSE
    client, with an error event (the openai SDK raises on it); any other body arrives short."""

    usage = None
    pieces = 0

    def __init__(self, sse: bool) -> None:
        self.sse = sse

    def event(self, payload: bytes) -> bytes:
        return payload

    def tail(self) -> bytes:
        return b""

    def error(self, message: str) -> bytes:
        if not self.sse:
            return b""
        return b"data: " + openai_error_body(message, 502) + b"\n\n"
