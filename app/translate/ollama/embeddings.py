"""`/api/embed` and `/api/embeddings` <-> `/v1/embeddings`. Pure functions.

Ollama's `/api/embed` promises one L2-normalised vector per input and implements `dimensions`
by truncating and renormalising, for any model; that is done here, so it holds whatever
the backend does. A server that embeds with a model without pooling (llama.cpp's, for example)
answers with one vector per token: those are mean-pooled into one vector per input first.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

from ...errors import BackendError, BadRequest
from ...flavours import Flavour
from ..limits import MAX_EMBED_INPUTS

EMBEDDINGS_PATH = "/embeddings"
# Backend wording for an input longer than the model's window (vLLM, llama.cpp, OpenAI).
_OVERFLOW_HINTS = (
    "too large",
    "context size",
    "context length",
    "maximum context",
    "physical batch size",
    "exceeds the available context",
    "too long",
)


def embed_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and len(value) > MAX_EMBED_INPUTS:
        raise BadRequest(f"at most {MAX_EMBED_INPUTS} inputs are allowed, got {len(value)}")
    if isinstance(value, list) and all(type(item) is str for item in value):
        return value
    raise BadRequest("invalid input type: input must be a string or a list of strings")


def embeddings_body(
    backend_model: str, inputs: list[str], *, flavour: Flavour, truncate: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": backend_model, "input": inputs, "encoding_format": "float"}
    if truncate and flavour.embed_truncation_field:
        body["truncate_prompt_tokens"] = -1  # vLLM truncates to the model's window
    return body


def is_overflow(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _OVERFLOW_HINTS)


def vectors(answer: Any, count: int) -> list[list[float]]:
    """The backend's vectors in input order, one per input, as floats."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise BackendError(f"backend returned {_count(data)} embeddings for {count} inputs")
    ordered: list[list[float] | None] = [None] * count
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or ordered[index] is not None:
            raise BackendError("backend returned embeddings with inconsistent indexes")
        ordered[index] = _vector(item.get("embedding"))
    return [vector for vector in ordered if vector is not None]


def _count(data: Any) -> int:
    return len(data) if isinstance(data, list) else 0


def _vector(embedding: Any) -> list[float]:
    if isinstance(embedding, str):  # base64 of little-endian float32, OpenAI's compact form
        try:
            raw = base64.b64decode(embedding, validate=True)
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
        except (binascii.Error, struct.error):
            raise BackendError("backend returned an embedding that is not base64 float32") from None
    if isinstance(embedding, list) and embedding and isinstance(embedding[0], list):
        return _mean(embedding)  # one vector per token: the model has no pooling
    if isinstance(embedding, list) and all(isinstance(x, int | float) for x in embedding):
        return [float(x) for x in embedding]
    raise BackendError("backend returned an embedding that is not a list of numbers")


def _mean(rows: list[Any]) -> list[float]:
    width = len(rows[0])
    if not all(isinstance(row, list) and len(row) == width for row in rows):
        raise BackendError("backend returned per-token embeddings of unequal lengths")
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


def normalised(vector: list[float], dimensions: int | None = None) -> list[float]:
    if dimensions is not None:
        vector = vector[:dimensions]
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0:
        return vector
    return [x / norm for x in vector]


def normalised_all(vectors: list[list[float]], dimensions: int | None) -> list[list[float]]:
    return [normalised(vector, dimensions) for vector in vectors]


def prompt_tokens(answer: dict[str, Any]) -> int:
    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) else 0
