"""The backend exchanges of the APIs served as translations onto chat completions with
server-sent events: Anthropic Messages (app/anthropic/) and OpenAI Responses (app/responses/).

Routes validate and translate; this module does the I/O, as app/ollama/calls.py does for the
Ollama API. A translator here has `complete` (a whole completion -> the API's object),
`replay` (a whole completion -> the API's stream) and the relay's `Translation` methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests
from flask import Response

from . import offload
from .backend import Backend
from .backend_errors import parse_json_body
from .body import json_body
from .catalogue import Catalogue
from .errors import BackendError, NotFound, ProxyError
from .observe import Exchange
from .openai.passthrough import pass_through
from .replies import JSON_MIMETYPE, SSE_MIMETYPE, stream_response
from .request_json import request_body
from .router import Route
from .services import services
from .stream import Relay, Translation
from .translate.chat_request import estimate_tokens
from .translate.chat_stream import StreamError
from .translate.models import Model
from .translate.ollama.embeddings import is_overflow
from .translate.ollama.model_info import context_length
from .translate.ollama.to_backend import CHAT_PATH
from .validation import FrozenSchema, load
from .wire import ndjson


class SSETranslator(Translation, Protocol):
    def complete(self, completion: dict[str, Any]) -> dict[str, Any]: ...

    def replay(self, completion: dict[str, Any]) -> bytes: ...


class Generation(Protocol):
    """What a validated Messages or Responses request has in common."""

    @property
    def model(self) -> str: ...

    @property
    def stream(self) -> bool: ...

    @property
    def tools(self) -> Any: ...


G = TypeVar("G", bound=Generation)


def natively(api: str) -> bool:
    """Whether the backends serve `api` themselves (the request is passed through): when every
    one's flavour does. In a mix the API is translated for all, which every backend takes."""
    return all(api in backend.flavour.native_apis for backend in services().backends.values())


def serve(
    api: str,
    schema: FrozenSchema[G],
    chat_body: Callable[..., dict[str, Any]],
    translator: Callable[[G, int], SSETranslator],
) -> Response:
    """One generation: validated, its model resolved, translated, answered. `translator` makes
    the answer's translator from the request and the prompt's estimated token count."""
    if natively(api):
        return pass_through(client_key=False)
    service = services()
    request = load(schema, json_body())
    model = service.catalogue.resolve(request.model)
    window = context_window(service.catalogue, model)

    def attempt(route: Route) -> Response:
        target = route.target
        # A backend that cannot stream a request with tools answers whole, replayed as a stream.
        stream = request.stream and not (request.tools and not target.flavour.streams_tool_calls)
        body = offload.for_request(chat_body, request, target, stream=stream, context_length=window)
        estimate = estimate_tokens(body["messages"], body.get("tools", ()))
        return answer(route.backend, body, translator(request, estimate), stream=request.stream)

    return service.router.exchange(model, attempt)


def context_window(catalogue: Catalogue, model: Model) -> int | None:
    """The model's context length where the backend or the mapping file says it. A name the
    mapping file's default_model serves (Claude Code's `claude-*` names) carries no backend
    entry of its own: the backend id's entry does."""
    if not model.info and not model.declared:
        try:
            model = catalogue.resolve(model.backend_id)
        except NotFound:
            return None
    return context_length(model, 0) or None


def answer(
    backend: Backend, body: dict[str, Any], translator: SSETranslator, *, stream: bool
) -> Response:
    """The client's answer: streamed, replayed from a whole completion (`body` asks for none:
    backends that cannot stream this request), or one JSON object."""
    try:
        return _answer(backend, body, translator, stream=stream)
    except ProxyError as exc:
        if exc.status == 400 and is_overflow(exc.message):
            # OpenAI's code for it: Codex then tells its user the context is full.
            exc.code = "context_length_exceeded"
        raise


def _answer(
    backend: Backend, body: dict[str, Any], translator: SSETranslator, *, stream: bool
) -> Response:
    if stream and body.get("stream"):
        exchange = Exchange(body.get("model"))
        response = backend.post(CHAT_PATH, request_body(body), stream=True)
        return Relay(response, backend, translator, exchange).respond(SSE_MIMETYPE)
    response = backend.post(CHAT_PATH, request_body(body))
    exchange = Exchange(body.get("model"))
    # A long answer is parsed, translated and encoded off the event loop, as a large request is
    # (a 50 MB answer stalled every other connection of the worker for up to 0.9 s).
    try:
        result = offload.cpu(len(response.content), _rendered, response, translator, stream)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None
    exchange.tokens(translator.usage)
    if stream:
        return stream_response(result, SSE_MIMETYPE)
    return Response(result, mimetype=JSON_MIMETYPE)


def _rendered(response: requests.Response, translator: SSETranslator, stream: bool) -> bytes:
    """The client's bytes for a whole answer: its replay as a stream, or one JSON object."""
    completion = parse_json_body(response, CHAT_PATH)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {CHAT_PATH}")
    return translator.replay(completion) if stream else ndjson(translator.complete(completion))
