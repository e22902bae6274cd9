"""A model as clients name it, and where it is served.

Ollama names are `[namespace/]model:tag` with `latest` as the default tag, matched without
regard to case. A backend id without a tag is shown as `<id>:latest`. One model may have
several deployments: the same model served by several backends (replicas), each under its
own backend id.
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
class Deployment:
    backend: str  # the backend's configured name
    backend_id: str  # what that backend is asked for
    info: Mapping[str, Any] = field(default_factory=dict)  # its /v1/models entry


@dataclass(frozen=True)
class Model:
    name: str  # what Ollama clients see, e.g. "llama3.2:latest"
    deployments: tuple[Deployment, ...]
    # What MODEL_MAPPING_FILE's "models" says about it (context_length, capabilities): it wins.
    declared: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backend_id(self) -> str:
        """The id of its first deployment: what listings describe it by."""
        return self.deployments[0].backend_id

    @property
    def info(self) -> Mapping[str, Any]:
        return self.deployments[0].info
