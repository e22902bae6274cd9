"""A model as clients name it and as the backend serves it.

Ollama names are `[namespace/]model:tag` with `latest` as the default tag, matched without
regard to case. A backend id without a tag is shown as `<id>:latest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def ollama_name(name: str) -> str:
    """`x` -> `x:latest`; a name that already has a tag (after the last `/`) is kept."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def name_key(name: str) -> str:
    """What two names must share to be the same model: `X` matches `x:latest`."""
    return ollama_name(name.strip()).lower()


@dataclass(frozen=True)
class Model:
    name: str  # what Ollama clients see, e.g. "llama3.2:latest"
    backend_id: str  # what the backend is asked for
    info: Mapping[str, Any] = field(default_factory=dict)  # the backend's /v1/models entry
    # What MODEL_MAPPING_FILE's "models" says about it (context_length, capabilities): it wins.
    declared: Mapping[str, Any] = field(default_factory=dict)
