"""`/api/chat` and `/api/generate`: validate, resolve the model, translate, relay."""

from __future__ import annotations

from typing import Any

from flask import Response

from .. import offload
from ..body import json_body
from ..errors import BadRequest, model_not_found
from ..replies import NDJSON_MIMETYPE, encoded_json_response, json_response, stream_response
from ..router import Route
from ..services import services
from ..translate.models import Model
from ..translate.ollama.context import conversation, decode
from ..translate.ollama.from_backend import Translator, load_reply, replay_lines
from ..translate.ollama.model_info import known_capabilities
from ..translate.ollama.request_types import Generation
from ..translate.ollama.to_backend import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    chat_body,
    completions_body,
    generate_chat_body,
)
from ..validation import load
from . import bp
from .calls import stream_answer, whole_answer, whole_json
from .schemas import chat_schema, generate_schema


def _check_think(request: Generation, model: Model) -> None:
    """Ollama's 400 for `think` on a model that does not think, when that is known (declared
    or reported by the backend), never on a guess from the name."""
    if request.think is None or request.think is False:
        return
    known = known_capabilities(model)
    if known is not None and "thinking" not in known:
        raise BadRequest(f'"{request.model}" does not support thinking')


def _translator(
    request: Generation, *, chat: bool, turns: list[dict[str, str]] | None = None
) -> Translator:
    return Translator(
        request.model,
        chat=chat,
        drop_thinking=request.think is False,
        top_logprobs=request.top_logprobs,
        conversation=turns,
    )


def _answer(
    route: Route, path: str, body: dict[str, Any], translator: Translator, *, stream: bool
) -> Response:
    if stream:
        return stream_answer(route.backend, path, body, translator)
    return encoded_json_response(whole_json(route.backend, path, body, translator))


@bp.post("/api/chat")
def chat() -> Response:
    request = load(chat_schema, json_body())
    service = services()
    model = service.catalogue.resolve(request.model)
    _check_think(request, model)
    if not request.messages:
        return json_response(load_reply(request.model, request.keep_alive, chat=True))
    translator = _translator(request, chat=True)

    def attempt(route: Route) -> Response:
        target = route.target
        if request.stream and request.tools and not target.flavour.streams_tool_calls:
            body = offload.for_request(chat_body, request, target, stream=False)
            result = whole_answer(route.backend, CHAT_PATH, body, translator)
            return stream_response(replay_lines(result, chat=True), NDJSON_MIMETYPE)
        body = offload.for_request(chat_body, request, target, stream=request.stream)
        return _answer(route, CHAT_PATH, body, translator, stream=request.stream)

    return service.router.exchange(model, attempt)


@bp.post("/api/generate")
def generate() -> Response:
    request = load(generate_schema, json_body())
    if request.raw and (request.template or request.system or request.context):
        raise BadRequest("raw mode does not support template, system, or context")
    if not request.model:
        raise model_not_found("")  # Ollama's generate answers an empty name so (chat: 400)
    service = services()
    model = service.catalogue.resolve(request.model)
    _check_think(request, model)
    if not request.prompt:
        return json_response(load_reply(request.model, request.keep_alive, chat=False))
    if request.raw or request.suffix:
        # Untemplated prompts: no conversation to carry, so no context (as in raw Ollama).
        translator = _translator(request, chat=False)
        max_tokens = service.settings.completions_max_tokens

        def untemplated(route: Route) -> Response:
            if request.suffix and not request.raw and not route.target.flavour.suffix:
                raise BadRequest(f'"{request.model}" does not support insert')
            body = completions_body(
                request, route.target, stream=request.stream, default_max_tokens=max_tokens
            )
            return _answer(route, COMPLETIONS_PATH, body, translator, stream=request.stream)

        return service.router.exchange(model, untemplated)
    history = offload.for_request(decode, request.context)
    turns = conversation(request.prompt, request.system, history)
    translator = _translator(request, chat=False, turns=turns)

    def templated(route: Route) -> Response:
        body = offload.for_request(
            generate_chat_body, request, route.target, turns, stream=request.stream
        )
        return _answer(route, CHAT_PATH, body, translator, stream=request.stream)

    return service.router.exchange(model, templated)
