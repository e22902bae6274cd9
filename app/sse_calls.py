"""The backend exchanges of the APIs served as translations onto chat completions with
server-sent events: Anthropic Messages (app/anthropic/) and OpenAI Responses (app/responses/).

Routes validate and translate; this module does the I/O, as app/ollama/calls.py does for the
Ollama API. A translator here has `complete` (a whole completion -> the API's object),
`replay` (a whole completion -> the API's stream) and the relay's `Translation` methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Response

from . import offload
from .backend import Backend, dumps, parse_json_body
from .catalogue import Catalogue
from .errors import BackendError, NotFound
from .observe import Exchange
from .replies import SSE_MIMETYPE, json_response, stream_response
from .stream import Relay, Translation
from .translate.chat_stream import StreamError
from .translate.models import Model
from .translate.ollama.model_info import context_length
from .translate.ollama.to_backend import CHAT_PATH


class SSETranslator(Translation, Protocol):
    def complete(self, completion: dict[str, Any]) -> dict[str, Any]: ...

    def replay(self, completion: dict[str, Any]) -> bytes: ...


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
    if stream and body.get("stream"):
        exchange = Exchange(body.get("model"))
        response = backend.post(CHAT_PATH, offload.for_request(dumps, body), stream=True)
        return Relay(response, backend, translator, exchange).respond(SSE_MIMETYPE)
    completion = _whole(backend, body)
    exchange = Exchange(body.get("model"))
    try:
        result = translator.replay(completion) if stream else translator.complete(completion)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None
    exchange.tokens(translator.usage)
    if isinstance(result, bytes):
        return stream_response(result, SSE_MIMETYPE)
    return json_response(result)


def _whole(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    response = backend.post(CHAT_PATH, offload.for_request(dumps, body))
    completion = parse_json_body(response, CHAT_PATH)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {CHAT_PATH}")
    return completion
