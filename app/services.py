"""The per-worker objects every request shares: settings, the backend client, the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .backend import Backend
from .catalogue import Catalogue
from .config import Settings
from .flavours import ThinkStyle
from .translate.models import Model
from .translate.ollama.to_backend import Target

EXTENSION = "ollama_proxy"


@dataclass(frozen=True)
class Services:
    settings: Settings
    backend: Backend
    catalogue: Catalogue

    @classmethod
    def build(cls, settings: Settings) -> Services:
        backend = Backend(settings)
        catalogue = Catalogue(backend, settings.mapping, settings.models_cache_ttl)
        return cls(settings, backend, catalogue)

    def target(self, model: Model) -> Target:
        """Where a request for `model` goes, and in which dialect."""
        flavour = self.backend.flavour
        control = self.settings.thinking_control
        style = flavour.think_style if control == "auto" else ThinkStyle(control)
        return Target(model.backend_id, flavour, style)


def services() -> Services:
    service: Services = current_app.extensions[EXTENSION]
    return service
