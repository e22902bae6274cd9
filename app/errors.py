"""The exceptions every layer raises, with the HTTP status and message a client should see.

No Flask here: pure translators raise these too. error_handlers.py renders them in the shape
of the API that was called.
"""

from __future__ import annotations

import json
from typing import Any


class ProxyError(Exception):
    """An error with the HTTP status and message a client should see.

    `failover`: the backend failed before it could have started on the request (refused,
    unreachable, its breaker open, or it answered 429/502/503/504): another deployment of the
    model may take it.
    """

    status = 500

    def __init__(
        self,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        *,
        failover: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.failover = failover
        # OpenAI's machine-readable `code` ("model_not_found"), where one applies.
        self.code = code


class BadRequest(ProxyError):
    status = 400


class Unauthorized(ProxyError):
    status = 401


class NotFound(ProxyError):
    status = 404


class BackendError(ProxyError):
    """The backend answered with an error, or could not be reached (status 502/503/504)."""

    status = 502


def model_not_found(name: str) -> NotFound:
    # Ollama's wording on chat, generate, show, embed and delete; clients key on the 404 and on
    # "not found" (ollama run then pulls).
    return NotFound(f"model '{name}' not found", code="model_not_found")


def scheduler_not_found(name: str) -> NotFound:
    """Ollama's older wording, still what its legacy /api/embeddings answers."""
    return NotFound(f'model "{name}" not found, try pulling it first')


# What backends say, with a 500, about a request that could never succeed: input over the
# context or the batch, an image to a text-only model, fields that fail validation.
_CLIENT_FAULTS = (
    "too large to process",
    "exceeds the available context",
    "context length",
    "context size",
    "maximum context",
    "image input is not supported",
    "validation error",
)


def client_fault(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _CLIENT_FAULTS)


def backend_message(body: bytes, fallback: str) -> str:
    """The human message inside an OpenAI-style error body, whatever its dialect.

    Handles `{"error": {"message": ...}}` (OpenAI, vLLM, llama.cpp, OpenRouter),
    `{"error": "..."}`, vLLM < 0.10.1's flat `{"object": "error", "message": ...}` and short
    plain text. An HTML error page (a reverse proxy's, a web framework's) is never passed on:
    the fallback names what failed instead.
    """
    try:
        document: Any = json.loads(body)
    except RecursionError:  # nested too deeply: no message anyone wrote
        return fallback
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        if not text or text.startswith("<") or "\n" in text:
            return fallback
        return text[:500]
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if isinstance(document.get("message"), str):
            return str(document["message"])
        if isinstance(document.get("detail"), str):  # FastAPI-style servers
            return str(document["detail"])
    return fallback
