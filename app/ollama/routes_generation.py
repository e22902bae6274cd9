"""`/api/chat` and `/api/generate`: validate, resolve the model, translate, relay."""

from __future__ import annotations

from typing import Any

from flask import Response

from ..body import json_body
from ..catalogue import Model
from ..errors import BadRequest
from ..flavours import streams_tool_calls, supports_suffix
from ..replies import json_response
from ..services import Services, services
from . import bp
from .context import conversation, decode
from .relay import load_reply, replay_as_stream, stream_answer, whole_answer
from .requests_out import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    Target,
    chat_body,
    completions_body,
    generate_chat_body,
)
from .responses_in import Translator
from .schemas import chat_schema, generate_schema, load


def _target(service: Services, model: Model) -> Target:
    settings = service.settings
    return Target(model.backend_id, settings.backend_flavour, settings.thinking_control)


def _translator(
    request: dict[str, Any], *, chat: bool, conversation: list[dict[str, str]] | None = None
) -> Translator:
    return Translator(
        request["model"],
        chat=chat,
        drop_thinking=request["think"] is False,
        top_logprobs=request["top_logprobs"],
        conversation=conversation,
    )


@bp.post("/api/chat")
def chat() -> Response:
    request = load(chat_schema, json_body())
    service = services()
    model = service.catalogue.resolve(request["model"])
    if not request["messages"]:
        return load_reply(request["model"], request["keep_alive"], chat=True)
    target = _target(service, model)
    translator = _translator(request, chat=True)
    stream = request["stream"]
    if stream and request["tools"] and not streams_tool_calls(target.flavour):
        body = chat_body(request, target, stream=False)
        result = whole_answer(service.backend, CHAT_PATH, body, translator)
        return replay_as_stream(result, chat=True)
    body = chat_body(request, target, stream=stream)
    if stream:
        return stream_answer(service.backend, CHAT_PATH, body, translator)
    return json_response(whole_answer(service.backend, CHAT_PATH, body, translator))


@bp.post("/api/generate")
def generate() -> Response:
    request = load(generate_schema, json_body())
    if request["raw"] and (request["template"] or request["system"] or request["context"]):
        raise BadRequest("raw mode does not support template, system, or context")
    service = services()
    model = service.catalogue.resolve(request["model"])
    if not request["prompt"]:
        return load_reply(request["model"], request["keep_alive"], chat=False)
    target = _target(service, model)
    stream = request["stream"]
    if request["suffix"] and not request["raw"] and not supports_suffix(target.flavour):
        raise BadRequest(f'"{request["model"]}" does not support insert')
    if request["raw"] or request["suffix"]:
        # Untemplated prompts: no conversation to carry, so no context (as in raw Ollama).
        translator = _translator(request, chat=False)
        path = COMPLETIONS_PATH
        body = completions_body(
            request,
            target,
            stream=stream,
            default_max_tokens=service.settings.completions_max_tokens,
        )
    else:
        turns = conversation(request["prompt"], request["system"], decode(request["context"]))
        translator = _translator(request, chat=False, conversation=turns)
        path = CHAT_PATH
        body = generate_chat_body(request, target, turns, stream=stream)
    if stream:
        return stream_answer(service.backend, path, body, translator)
    return json_response(whole_answer(service.backend, path, body, translator))
