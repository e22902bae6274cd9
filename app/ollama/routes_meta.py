"""Liveness, version, status and the model listings: `/`, `/api/version`, `/api/status`,
`/api/tags`, `/api/show`, `/api/ps`. Flask answers HEAD for every GET route, as Ollama does."""

from __future__ import annotations

from flask import Response

from ..body import json_body
from ..replies import json_response
from ..services import services
from ..translate.ollama.model_info import ps_entry, show, tag_entry
from ..validation import load
from . import bp
from .schemas import model_schema


@bp.get("/")
def root() -> Response:
    return Response("Ollama is running", mimetype="text/plain")


@bp.get("/api/version")
def version() -> Response:
    return json_response({"version": services().settings.ollama_version})


@bp.get("/api/status")
def status() -> Response:
    # Ollama's cloud features (cloud models, web search) are its own service: never here.
    return json_response({"cloud": {"disabled": True, "source": "config"}})


@bp.get("/api/tags")
def tags() -> Response:
    service = services()
    context = service.settings.default_context_length
    return json_response({"models": [tag_entry(m, context) for m in service.catalogue.models()]})


@bp.post("/api/show")
def show_model() -> Response:
    request = load(model_schema, json_body())
    service = services()
    model = service.catalogue.resolve(request.model)
    return json_response(show(model, service.settings.default_context_length))


@bp.get("/api/ps")
def running() -> Response:
    service = services()
    context = service.settings.default_context_length
    return json_response({"models": [ps_entry(m, context) for m in service.catalogue.models()]})
