"""`/api/embed` (normalised, batched) and the legacy `/api/embeddings` (one raw vector)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response

from .. import offload
from ..body import json_body
from ..errors import NotFound, scheduler_not_found
from ..replies import JSON_MIMETYPE, json_response
from ..services import services
from ..translate.ollama.embeddings import embed_inputs, normalised_all
from ..validation import load
from ..wire import ndjson
from . import bp
from .calls import embed as embed_call
from .schemas import embed_schema, embeddings_schema


@bp.post("/api/embed")
def embed() -> Response:
    started = time.perf_counter_ns()
    request = load(embed_schema, json_body())
    inputs = embed_inputs(request.input)
    service = services()
    model = service.catalogue.resolve(request.model)
    if not inputs:  # Ollama answers an empty input locally; OpenAI backends would 400
        return json_response({"model": request.model, "embeddings": []})
    asked = time.perf_counter_ns()
    tokens, raw = service.router.exchange(
        model,
        lambda route: embed_call(route.backend, route.target, inputs, truncate=request.truncate),
    )
    # Thousands of floats per input: normalised and encoded off the event loop when large.
    size = 8 * sum(len(vector) for vector in raw)
    vectors = offload.cpu(size, normalised_all, raw, request.dimensions)
    result: dict[str, Any] = {
        "model": request.model,
        "embeddings": vectors,
        "total_duration": time.perf_counter_ns() - started,
        # Ollama's time to get the model ready; here, the proxy's own before the backend call.
        "load_duration": max(1, asked - started),
    }
    if tokens:
        result["prompt_eval_count"] = tokens
    return Response(offload.cpu(size, ndjson, result), mimetype=JSON_MIMETYPE)


@bp.post("/api/embeddings")
def embeddings() -> Response:
    request = load(embeddings_schema, json_body())
    service = services()
    try:
        model = service.catalogue.resolve(request.model)
    except NotFound:
        raise scheduler_not_found(request.model) from None
    if not request.prompt:
        return json_response({"embedding": []})
    _, raw = service.router.exchange(
        model,
        lambda route: embed_call(route.backend, route.target, [request.prompt], truncate=True),
    )
    return json_response({"embedding": raw[0]})
