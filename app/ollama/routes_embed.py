"""`/api/embed` (normalised, batched) and the legacy `/api/embeddings` (one raw vector)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response

from ..body import json_body
from ..replies import json_response
from ..services import services
from ..translate.ollama.embeddings import embed_inputs, normalised
from . import bp
from .calls import embed as embed_call
from .schemas import embed_schema, embeddings_schema, load


@bp.post("/api/embed")
def embed() -> Response:
    started = time.perf_counter_ns()
    request = load(embed_schema, json_body())
    inputs = embed_inputs(request.input)
    service = services()
    model = service.catalogue.resolve(request.model)
    if not inputs:  # Ollama answers an empty input locally; OpenAI backends would 400
        return json_response({"model": request.model, "embeddings": []})
    tokens, raw = embed_call(
        service.backend, service.target(model), inputs, truncate=request.truncate
    )
    result: dict[str, Any] = {
        "model": request.model,
        "embeddings": [normalised(vector, request.dimensions) for vector in raw],
        "total_duration": time.perf_counter_ns() - started,
    }
    if tokens:
        result["prompt_eval_count"] = tokens
    return json_response(result)


@bp.post("/api/embeddings")
def embeddings() -> Response:
    request = load(embeddings_schema, json_body())
    service = services()
    model = service.catalogue.resolve(request.model)
    if not request.prompt:
        return json_response({"embedding": []})
    _, raw = embed_call(service.backend, service.target(model), [request.prompt], truncate=True)
    return json_response({"embedding": raw[0]})
