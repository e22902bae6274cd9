"""`/v1/messages` and `/v1/messages/count_tokens`: validate, resolve the model, translate,
relay (app/sse_calls.py). The query string (Claude Code adds `?beta=true`) does not matter."""

from __future__ import annotations

from flask import Response, g
from werkzeug.exceptions import MethodNotAllowed

from .. import offload
from ..body import json_body
from ..errors import NotFound
from ..openai.passthrough import pass_through
from ..replies import json_response
from ..services import services
from ..sse_calls import natively, serve
from ..translate.anthropic.from_backend import MessageTranslator
from ..translate.anthropic.request_types import MessagesRequest
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


def _translator(request: MessagesRequest, estimate: int) -> MessageTranslator:
    return MessageTranslator(
        request.model,
        new_id("msg_"),
        input_estimate=estimate,
        stop_sequences=tuple(request.stop_sequences),
        drop_thinking=thinking_of(request) is False,
    )


@bp.post("/v1/messages")
def create_message() -> Response:
    return serve(NATIVE, messages_schema, chat_body, _translator)


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """An estimate, as Ollama's: characters / 4 of the prompt the backend would get."""
    if natively(NATIVE):
        return pass_through(client_key=False)
    service = services()
    request = load(count_tokens_schema, json_body())
    model = service.catalogue.resolve(request.model)
    flavour = service.router.route(model.deployments[0]).target.flavour
    messages, tools = offload.for_request(conversation, request, flavour)
    return json_response({"input_tokens": estimate_tokens(messages, tools)})


@bp.route("/v1/messages", methods=["GET", "PUT", "PATCH", "DELETE"])
@bp.route("/v1/messages/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def other_messages_route(rest: str = "") -> Response:
    """Other methods (the /v1 pass-through would take them to the backend) and other paths
    (message batches): not served here, but by a backend that serves the API natively."""
    if natively(NATIVE):
        return pass_through(client_key=False)
    if rest in ("", "count_tokens"):
        raise MethodNotAllowed(["POST"])
    raise NotFound(f"/v1/messages/{rest} is not supported by this server")
