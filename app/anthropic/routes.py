"""`/v1/messages` and `/v1/messages/count_tokens`: validate, resolve the model, translate,
relay. The query string (Claude Code adds `?beta=true`) does not matter."""

from __future__ import annotations

from flask import Response, g
from werkzeug.exceptions import MethodNotAllowed

from .. import offload
from ..body import json_body
from ..errors import NotFound
from ..openai.passthrough import relay
from ..replies import json_response
from ..services import services
from ..sse_calls import answer, context_window
from ..translate.anthropic.from_backend import MessageTranslator
from ..translate.anthropic.to_backend import chat_body, conversation, thinking_of
from ..translate.chat_request import estimate_tokens, new_id
from ..validation import load
from . import bp
from .schemas import count_tokens_schema, messages_schema

NATIVE = "messages"


@bp.after_request
def request_id_header(response: Response) -> Response:
    # The SDKs report `request-id` on results and errors (Anthropic's ids start with req_).
    if "request_id" in g:
        response.headers["request-id"] = f"req_{g.request_id}"
    return response


@bp.post("/v1/messages")
def create_message() -> Response:
    service = services()
    if NATIVE in service.backend.flavour.native_apis:
        return relay(client_key=False)
    request = load(messages_schema, json_body())
    model = service.catalogue.resolve(request.model)
    target = service.target(model)
    # A backend that cannot stream a request with tools answers whole, replayed as a stream.
    stream = request.stream and not (request.tools and not target.flavour.streams_tool_calls)
    window = context_window(service.catalogue, model)
    body = offload.for_request(chat_body, request, target, stream=stream, context_length=window)
    translator = MessageTranslator(
        request.model,
        new_id("msg_"),
        input_estimate=estimate_tokens(body["messages"], body.get("tools", ())),
        stop_sequences=tuple(request.stop_sequences),
        drop_thinking=thinking_of(request) is False,
    )
    return answer(service.backend, body, translator, stream=request.stream)


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """An estimate, as Ollama's: characters / 4 of the prompt the backend would get."""
    service = services()
    if NATIVE in service.backend.flavour.native_apis:
        return relay(client_key=False)
    request = load(count_tokens_schema, json_body())
    model = service.catalogue.resolve(request.model)
    flavour = service.target(model).flavour
    messages, tools = offload.for_request(conversation, request, flavour)
    return json_response({"input_tokens": estimate_tokens(messages, tools)})


@bp.route("/v1/messages/<path:rest>", methods=["GET", "POST", "DELETE"])
def other_messages_route(rest: str) -> Response:
    """Message batches and whatever Anthropic adds under /v1/messages: not served here (a
    backend that serves the API natively gets them)."""
    if NATIVE in services().backend.flavour.native_apis:
        return relay(client_key=False)
    raise NotFound(f"/v1/messages/{rest} is not supported by this server")


@bp.route("/v1/messages", methods=["GET", "PUT", "PATCH", "DELETE"])
def messages_other_methods() -> Response:
    # Without this rule the /v1 pass-through would take these methods to the backend.
    if NATIVE in services().backend.flavour.native_apis:
        return relay(client_key=False)
    raise MethodNotAllowed(["POST"])
