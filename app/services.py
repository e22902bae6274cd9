"""The per-worker objects every request shares: settings, the backend client, the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .backend import Backend
from .catalogue import Catalogue
from .config import Settings

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


def services() -> Services:
    service: Services = current_app.extensions[EXTENSION]
    return service
