"""OpenAI request bodies read for their `model` alone (to route them), and the model list in
OpenAI's shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .models import Model


def model_field(body: bytes) -> str | None:
    """The `model` a JSON body names, or None (no body, not JSON, no model)."""
    if not body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    model = document.get("model") if isinstance(document, dict) else None
    return model if isinstance(model, str) and model else None


def with_model(body: bytes, model: str) -> bytes:
    """The body with its `model` replaced; the rest as the client sent it (key order kept)."""
    document = json.loads(body)
    document["model"] = model
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def model_list(models: Sequence[Model]) -> dict[str, Any]:
    """The models every backend serves, as OpenAI's `/v1/models` lists them: ids are the names
    clients send back (without Ollama's `:latest`)."""
    data = []
    for model in models:
        created = model.info.get("created")
        data.append(
            {
                "id": model.name.removesuffix(":latest"),
                "object": "model",
                "created": created if isinstance(created, int) else 0,
                "owned_by": model.deployments[0].backend,
            }
        )
    return {"object": "list", "data": data}
