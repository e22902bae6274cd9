"""Forward an OpenAI request byte for byte and relay the answer as it arrives.

The body is never parsed or re-serialised (openai-python asks for base64 embeddings and expects
them back untouched); status, content type and error bodies are the backend's own. The path is
confined under the backend's API prefix and only headers that describe the request are
forwarded: the proxy's own backend key goes with every call, so nothing a client sends may
steer it elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, request

from .. import offload
from ..backend import Backend
from ..backend_errors import FAILOVER_STATUSES
from ..body import raw_body, routing_document
from ..error_handlers import openai_error_body
from ..errors import BackendError
from ..observe import Exchange
from ..replies import json_response
from ..router import Route
from ..services import services
from ..stream import Relay, raw_batches
from ..translate.openai_models import model_field, model_list, with_model
from . import bp
from .paths import backend_path

# Client headers that may reach the backend: what describes the request itself. Everything else
# stays here: Cookie, forwarding headers (X-Forwarded-*, Forwarded, X-Real-IP), other
# credentials (X-Api-Key, Api-Key), and billing selectors (OpenAI-Organization,
# OpenAI-Project), with which a client could choose whose account the proxy's key charges.
FORWARDED = frozenset(
    {
        "accept",
        "accept-encoding",
        "content-type",
        "user-agent",
        "openai-beta",
        "idempotency-key",
        "anthropic-version",
        "anthropic-beta",
    }
)
FORWARDED_PREFIXES = ("x-stainless-",)  # the OpenAI SDKs' own metadata
# Backend headers that never reach the client: the hop-by-hop ones (RFC 9110, 7.6.1), the ones
# gunicorn writes itself (Date, Server), cookies, and CORS, which is the proxy's to decide.
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
_NOT_RELAYED = HOP_BY_HOP | {"date", "server", "set-cookie", "set-cookie2"}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


# `path` is the decoded path; backend_path reads the raw one from the environ instead.
@bp.route("/<path:path>", methods=_METHODS)
def forward(path: str) -> Response:
    return pass_through()


def pass_through(*, client_key: bool = True) -> Response:
    """The current request, passed to the backend and its answer relayed. `client_key=False`:
    the client's credentials never reach the backend, whatever the settings (the APIs this
    proxy serves itself, passed through to a backend that serves them natively)."""
    service = services()
    headers = {
        name: value
        for name, value in request.headers
        if (lowered := name.lower()) in FORWARDED or lowered.startswith(FORWARDED_PREFIXES)
    }
    authorization = request.headers.get("Authorization")
    if client_key and authorization and _transparent(service.backends, service.settings.api_keys):
        headers["Authorization"] = authorization
    target = backend_path(request.environ)
    body = raw_body()
    if len(service.backends) == 1:
        # One backend: the body is relayed without even being parsed.
        return relay(service.backend, request.method, target, body, headers)
    if request.method == "GET" and target.partition("?")[0] == "/models":
        return json_response(model_list(service.catalogue.models()))
    # The body is parsed to find its model: off the event loop when large, and bounded as every
    # API's body is (a 60 MB `[{},{},...]` stalled the worker 4 s and grew it by 1.7 GB).
    document = offload.cpu(len(body), routing_document, body)
    name = model_field(document)
    if name is None:  # nothing names a model: the first backend serves it
        return relay(service.backend, request.method, target, body, headers)
    model = service.catalogue.resolve(name)

    def attempt(route: Route) -> Response:
        # The backend's own id where it differs from the client's name (a prefix, an alias).
        wanted = route.target.backend_model
        if wanted == name or document is None:
            payload = body
        else:
            payload = offload.cpu(len(body), with_model, document, wanted)
        return relay(route.backend, request.method, target, payload, headers, last=route.last)

    return service.router.exchange(model, attempt)


def _transparent(backends: Mapping[str, Backend], api_keys: frozenset[str]) -> bool:
    """Whether the client's own key goes to the backend: only to a single backend without a key
    of its own, and when the proxy checks no keys itself. With several backends, a key meant for
    one of them must not reach whichever the router picks."""
    if len(backends) != 1 or api_keys:
        return False
    return not next(iter(backends.values())).spec.api_key


def relay(
    backend: Backend,
    method: str,
    target: str,
    body: bytes,
    headers: dict[str, str],
    *,
    last: bool = True,
) -> Response:
    """The backend's answer, relayed as it arrives. A rate limit or gateway error is the answer
    only when no other deployment is left (`last`); before that it is a failover."""
    response = backend.send(method, target, body or None, stream=True, headers=headers)
    if not last and response.status_code in FAILOVER_STATUSES:
        response.close()
        raise BackendError(f"HTTP {response.status_code}", 502, failover=True)
    sse = response.headers.get("Content-Type", "").startswith("text/event-stream")
    # The body is not parsed: the model is unknown, and the tokens are not counted.
    streamed = Relay(
        response,
        backend,
        Verbatim(sse),
        Exchange(None) if sse else None,  # SSE answers are streams in the metrics
        batches=raw_batches(response),
        count_tokens=False,
    )
    relayed = streamed.respond(response.headers.get("Content-Type", "application/octet-stream"))
    relayed.status_code = response.status_code
    for name, value in response.headers.items():
        lowered = name.lower()
        if lowered not in _NOT_RELAYED and not lowered.startswith("access-control-"):
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
