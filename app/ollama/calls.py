"""The Ollama API's exchanges with the backend: generations (whole or streamed) and embeddings.

Routes validate and translate; this module does the I/O, and nothing else in app/ollama does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from flask import Response

from .. import offload
from ..backend import Backend
from ..backend_errors import parse_json_body
from ..errors import BackendError, BadRequest, ProxyError
from ..observe import Exchange
from ..replies import NDJSON_MIMETYPE
from ..request_json import request_body
from ..stream import Relay
from ..translate.chat_stream import StreamError
from ..translate.limits import EMBED_BATCH
from ..translate.ollama.embeddings import (
    EMBEDDINGS_PATH,
    embeddings_body,
    is_overflow,
    prompt_tokens,
    vectors,
)
from ..translate.ollama.from_backend import Translator
from ..translate.ollama.to_backend import Target
from ..wire import ndjson

T = TypeVar("T")


def whole_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> dict[str, Any]:
    return _whole(backend, path, body, translator, _translated)


def whole_json(backend: Backend, path: str, body: dict[str, Any], translator: Translator) -> bytes:
    """`whole_answer` as the bytes Ollama sends, encoded where it was translated."""
    return _whole(backend, path, body, translator, _encoded)


def _whole(
    backend: Backend,
    path: str,
    body: dict[str, Any],
    translator: Translator,
    finish: Callable[[requests.Response, str, Translator], T],
) -> T:
    exchange = Exchange(body.get("model"))
    encoded = request_body(body)
    translator.timing.backend_asked()
    response = backend.post(path, encoded)
    translator.timing.backend_answered()
    # A long answer is parsed, translated and encoded off the event loop, as embeddings are
    # (below); so is the answer to a long request (generate packs the conversation, and an
    # echo of a long prompt is long).
    size = max(len(response.content), offload.request_bytes())
    result = offload.cpu(size, finish, response, path, translator)
    exchange.tokens(translator.usage)
    return result


def _translated(response: requests.Response, path: str, translator: Translator) -> dict[str, Any]:
    completion = parse_json_body(response, path)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {path}")
    try:
        return translator.complete(completion)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None


def _encoded(response: requests.Response, path: str, translator: Translator) -> bytes:
    return ndjson(_translated(response, path, translator))


def stream_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> Response:
    exchange = Exchange(body.get("model"))
    response = backend.post(path, request_body(body), stream=True)
    translator.timing.backend_answered()
    return Relay(response, backend, translator, exchange).respond(NDJSON_MIMETYPE)


def embed(
    backend: Backend, target: Target, inputs: list[str], *, truncate: bool
) -> tuple[int, list[list[float]]]:
    """The backend's vectors for `inputs`, in order, and the prompt tokens it counted."""
    flavour = target.flavour
    size = EMBED_BATCH if flavour.embeds_lists else 1
    batches = [inputs[start : start + size] for start in range(0, len(inputs), size)]
    tokens, result = 0, []
    for batch in batches:
        body = embeddings_body(target.backend_model, batch, flavour=flavour, truncate=truncate)
        answer = _embed_batch(backend, body, truncate)
        tokens += prompt_tokens(answer)
        result.extend(vectors(answer, len(batch)))
    Exchange(target.backend_model).tokens({"prompt_tokens": tokens})
    return tokens, result


def _embed_batch(backend: Backend, body: dict[str, Any], truncate: bool) -> Any:
    try:
        response = backend.post(EMBEDDINGS_PATH, body)
    except ProxyError as exc:
        if exc.status == 400 and not truncate and is_overflow(exc.message):
            raise BadRequest("the input length exceeds the context length") from None
        raise
    # Vectors are large (thousands of floats per input): parsed off the event loop if so.
    return offload.cpu(len(response.content), parse_json_body, response, EMBEDDINGS_PATH)
