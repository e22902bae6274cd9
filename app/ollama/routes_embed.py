"""`/api/embed` (normalised, batched) and the legacy `/api/embeddings` (one raw vector)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response

from ..backend import parse_json_body
from ..body import json_body
from ..errors import BadRequest, ProxyError
from ..flavours import embeds_in_batches
from ..observe import Exchange
from ..replies import json_response
from ..services import services
from . import bp
from .embeddings import (
    EMBEDDINGS_PATH,
    embed_inputs,
    embeddings_body,
    is_overflow,
    normalised,
    prompt_tokens,
    vectors,
)
from .schemas import embed_schema, embeddings_schema, load


def _embed(
    backend_model: str, inputs: list[str], *, truncate: bool
) -> tuple[int, list[list[float]]]:
    """The backend's vectors for `inputs`, in order, and the prompt tokens it counted."""
    flavour = services().settings.backend_flavour
    batches = [inputs] if embeds_in_batches(flavour) else [[text] for text in inputs]
    tokens, result = 0, []
    for batch in batches:
        answer = _embed_batch(
            embeddings_body(backend_model, batch, flavour=flavour, truncate=truncate), truncate
        )
        tokens += prompt_tokens(answer)
        result.extend(vectors(answer, len(batch)))
    Exchange(backend_model).tokens({"prompt_tokens": tokens})
    return tokens, result


def _embed_batch(body: dict[str, Any], truncate: bool) -> Any:
    try:
        response = services().backend.post(EMBEDDINGS_PATH, body)
    except ProxyError as exc:
        if exc.status == 400 and not truncate and is_overflow(exc.message):
            raise BadRequest("the input length exceeds the context length") from None
        raise
    return parse_json_body(response, EMBEDDINGS_PATH)


@bp.post("/api/embed")
def embed() -> Response:
    started = time.perf_counter_ns()
    request = load(embed_schema, json_body())
    inputs = embed_inputs(request["input"])
    model = services().catalogue.resolve(request["model"])
    if not inputs:  # Ollama answers an empty input locally; OpenAI backends would 400
        return json_response({"model": request["model"], "embeddings": []})
    tokens, raw = _embed(model.backend_id, inputs, truncate=request["truncate"])
    result: dict[str, Any] = {
        "model": request["model"],
        "embeddings": [normalised(vector, request["dimensions"]) for vector in raw],
        "total_duration": time.perf_counter_ns() - started,
    }
    if tokens:
        result["prompt_eval_count"] = tokens
    return json_response(result)


@bp.post("/api/embeddings")
def embeddings() -> Response:
    request = load(embeddings_schema, json_body())
    model = services().catalogue.resolve(request["model"])
    if not request["prompt"]:
        return json_response({"embedding": []})
    _, raw = _embed(model.backend_id, [request["prompt"]], truncate=True)
    return json_response({"embedding": raw[0]})
