"""The per-worker objects every request shares: settings, the backends, the catalogue, the
router."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .backend import Backend
from .catalogue import Catalogue
from .config import Settings
from .router import Router

EXTENSION = "ollama_proxy"


@dataclass(frozen=True)
class Services:
    settings: Settings
    backends: dict[str, Backend]
    catalogue: Catalogue
    router: Router

    @classmethod
    def build(cls, settings: Settings) -> Services:
        backends = {spec.name: Backend(settings, spec=spec) for spec in settings.backends}
        catalogue = Catalogue(list(backends.values()), settings.mapping, settings.models_cache_ttl)
        router = Router(backends, catalogue.resolve, settings.fallbacks, settings.thinking_control)
        return cls(settings, backends, catalogue, router)

    @property
    def backend(self) -> Backend:
        """The first backend: where a request that names no model goes."""
        return next(iter(self.backends.values()))


def services() -> Services:
    service: Services = current_app.extensions[EXTENSION]
    return service
