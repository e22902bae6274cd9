"""The backend's models under Ollama names: fetched from `/v1/models`, cached briefly, resolved.

The mapping file's aliases apply both ways: clients may ask for an alias, and listings show the
alias instead of the backend id it stands for.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from .backend import Backend
from .config import ModelMapping
from .errors import BackendError, model_not_found
from .translate.models import Model, name_key, ollama_name

# After a miss, a name may be new on the backend: refetch, but not more often than this.
_MISS_REFRESH_SECONDS = 2.0


class Catalogue:
    def __init__(self, backend: Backend, mapping: ModelMapping, ttl: float) -> None:
        self._backend = backend
        self._mapping = mapping
        self._ttl = ttl
        self._aliases = {name_key(alias): target for alias, target in mapping.aliases.items()}
        self._lock = threading.Lock()  # cooperative under gevent: one refetch at a time
        self._models: list[Model] = []
        self._by_key: dict[str, Model] = {}
        self._fetched_at = float("-inf")

    def models(self) -> list[Model]:
        """Every model clients may use, aliases first, in the backend's order."""
        self._refresh_if_older_than(self._ttl)
        return self._models

    def resolve(self, requested: str) -> Model:
        """The model a client's name stands for, or Ollama's 404."""
        key = name_key(requested)
        target = self._aliases.get(key)
        if target is not None:
            # An explicit alias is trusted even when the backend does not list its target, or
            # cannot list anything right now.
            with contextlib.suppress(BackendError):
                self._refresh_if_older_than(self._ttl)
            return self._by_key.get(key) or self._model(ollama_name(requested), target)
        self._refresh_if_older_than(self._ttl)
        model = self._by_key.get(key)
        if model is None:
            self._refresh_if_older_than(_MISS_REFRESH_SECONDS)
            model = self._by_key.get(key)
        if model is not None:
            return model
        if self._mapping.default_model:
            return self._model(ollama_name(requested), self._mapping.default_model)
        raise model_not_found(requested)

    def fetched_ago(self) -> float:
        """Seconds since the backend last answered `/models` (infinite if it never has)."""
        return time.monotonic() - self._fetched_at

    def refresh(self, timeout: float | None = None) -> None:
        """Fetches the model list now (the readiness probe); raises the backend's error."""
        with self._lock:
            listing = self._backend.get_json("/models", timeout=timeout)
            self._install(listing)
            self._fetched_at = time.monotonic()

    def _refresh_if_older_than(self, seconds: float) -> None:
        if time.monotonic() - self._fetched_at < seconds:
            return
        with self._lock:
            if time.monotonic() - self._fetched_at < seconds:
                return  # another greenlet refreshed while this one waited
            try:
                listing = self._backend.get_json("/models")
            except BackendError:
                if self._by_key:
                    return  # keep serving the last good list while the backend is down
                raise
            self._install(listing)
            self._fetched_at = time.monotonic()

    def _model(self, name: str, backend_id: str, info: dict[str, Any] | None = None) -> Model:
        return Model(name, backend_id, info or {}, self._mapping.models.get(backend_id, {}))

    def _install(self, listing: Any) -> None:
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            raise BackendError("backend's /models answer has no data list", 502)
        infos = {
            entry["id"]: entry
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]
        }
        models: list[Model] = []
        aliased = set()
        for alias, target in self._mapping.aliases.items():
            if target in infos:
                models.append(self._model(ollama_name(alias), target, infos[target]))
                aliased.add(target)
        models.extend(
            self._model(ollama_name(backend_id), backend_id, info)
            for backend_id, info in infos.items()
            if backend_id not in aliased
        )
        by_key = {name_key(model.name): model for model in models}
        # Backend ids stay usable even when an alias hides them from listings.
        for backend_id, info in infos.items():
            by_key.setdefault(
                name_key(backend_id), self._model(ollama_name(backend_id), backend_id, info)
            )
        self._models, self._by_key = models, by_key
