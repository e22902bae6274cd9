"""`/v1/responses`: validate, resolve the model, translate, relay (app/sse_calls.py). Nothing
is stored, so the routes that read or cancel a stored response answer 404."""

from __future__ import annotations

from flask import Response
from werkzeug.exceptions import MethodNotAllowed

from ..errors import NotFound
from ..openai.passthrough import pass_through
from ..sse_calls import natively, serve
from ..translate.chat_request import new_id
from ..translate.responses.from_backend import ResponseTranslator
from ..translate.responses.request_types import ResponsesRequest
from ..translate.responses.to_backend import chat_body, tools_of
from . import bp
from .schemas import responses_schema

NATIVE = "responses"


def _translator(request: ResponsesRequest, estimate: int) -> ResponseTranslator:
    return ResponseTranslator(
        request,
        new_id("resp_"),
        namespaces=tools_of(request)[1],
        input_estimate=estimate,
        drop_thinking=(request.reasoning or {}).get("effort") == "none",
    )


@bp.post("/v1/responses")
def create_response() -> Response:
    return serve(NATIVE, responses_schema, chat_body, _translator)


@bp.route("/v1/responses", methods=["GET", "PUT", "PATCH", "DELETE"])
@bp.route("/v1/responses/<path:response_id>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def stored_response(response_id: str = "") -> Response:
    """Other methods (the /v1 pass-through would take them to the backend) and the stored
    responses this server does not keep; a backend that serves the API natively has them."""
    if natively(NATIVE):
        return pass_through(client_key=False)
    if not response_id:
        raise MethodNotAllowed(["POST"])
    raise NotFound(f"response {response_id.partition('/')[0]!r} not found: this server stores none")
