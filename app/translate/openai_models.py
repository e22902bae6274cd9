"""OpenAI request bodies read for their `model` alone (to route them), and the model list in
OpenAI's shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .models import Model


def model_field(document: dict[str, Any] | None) -> str | None:
    """The `model` a JSON body names, or None (no JSON object, no model)."""
    model = document.get("model") if document is not None else None
    return model if isinstance(model, str) and model else None


def with_model(document: dict[str, Any], model: str) -> bytes:
    """The body with its `model` replaced; the rest as the client sent it (key order kept)."""
    return json.dumps(
        {**document, "model": model}, ensure_ascii=False, separators=(",", ":")
    ).encode()


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
