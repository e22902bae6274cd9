"""`GET /v1/models/{model}`: one model in OpenAI's shape, as Ollama answers it, with the
proxy's aliases resolved (most backends have no such route: llama.cpp's server 404s it). The
list, `GET /v1/models`, is the backend's own, passed through."""

from __future__ import annotations

from flask import Response

from ..replies import json_response
from ..services import services
from ..translate.ollama.model_info import created
from . import bp


@bp.get("/models/<path:model>")
def one_model(model: str) -> Response:
    found = services().catalogue.resolve(model)  # unknown: the 404, in OpenAI's shape
    owner = found.info.get("owned_by")
    return json_response(
        {
            "id": model,
            "object": "model",
            "created": int(created(found).timestamp()),
            "owned_by": owner if isinstance(owner, str) and owner else "library",
        }
    )
