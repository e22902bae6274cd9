"""`/v1/responses`: validate, resolve the model, translate, relay. Nothing is stored, so the
routes that read or cancel a stored response answer 404."""

from __future__ import annotations

from flask import Response
from werkzeug.exceptions import MethodNotAllowed

from .. import offload
from ..body import json_body
from ..errors import NotFound
from ..openai.passthrough import relay
from ..services import services
from ..sse_calls import answer, context_window
from ..translate.chat_request import estimate_tokens, new_id
from ..translate.responses.from_backend import ResponseTranslator
from ..translate.responses.to_backend import chat_body, tools_of
from ..validation import load
from . import bp
from .schemas import responses_schema

NATIVE = "responses"


@bp.post("/v1/responses")
def create_response() -> Response:
    service = services()
    if NATIVE in service.backend.flavour.native_apis:
        return relay(client_key=False)
    request = load(responses_schema, json_body())
    model = service.catalogue.resolve(request.model)
    target = service.target(model)
    # A backend that cannot stream a request with tools answers whole, replayed as a stream.
    stream = request.stream and not (request.tools and not target.flavour.streams_tool_calls)
    window = context_window(service.catalogue, model)
    body = offload.for_request(chat_body, request, target, stream=stream, context_length=window)
    translator = ResponseTranslator(
        request,
        new_id("resp_"),
        namespaces=tools_of(request)[1],
        input_estimate=estimate_tokens(body["messages"], body.get("tools", ())),
        drop_thinking=(request.reasoning or {}).get("effort") == "none",
    )
    return answer(service.backend, body, translator, stream=request.stream)


@bp.route("/v1/responses/<path:response_id>", methods=["GET", "POST", "DELETE"])
def stored_response(response_id: str) -> Response:
    if NATIVE in services().backend.flavour.native_apis:
        return relay(client_key=False)
    raise NotFound(f"response {response_id.partition('/')[0]!r} not found: this server stores none")


@bp.route("/v1/responses", methods=["GET", "PUT", "PATCH", "DELETE"])
def responses_other_methods() -> Response:
    # Without this rule the /v1 pass-through would take these methods to the backend.
    if NATIVE in services().backend.flavour.native_apis:
        return relay(client_key=False)
    raise MethodNotAllowed(["POST"])
