"""The backend's models under Ollama names: fetched from `/v1/models`, cached briefly, resolved.

The mapping file's aliases apply both ways: clients may ask for an alias, and listings show the
alias instead of the backend id it stands for.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from .backend import Backend, parse_json_body, raise_for_status
from .config import ModelMapping
from .errors import BackendError, model_not_found
from .translate.models import Model, name_key, ollama_name

log = logging.getLogger(__name__)

MODELS_PATH = "/models"
# After a miss, a name may be new on the backend: refetch, but not more often than this.
_MISS_REFRESH_SECONDS = 2.0
# Answers of a backend that serves no model list (or serves it behind other credentials).
UNLISTED_STATUSES = frozenset({401, 403, 404, 405, 501})
FRESH_CREATED_SECONDS = 120.0


def _without_fresh_created(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """The entry without a `created` that is just the time of the listing (llama.cpp's server
    and vLLM stamp each listing so): a model's modified_at must not change on every listing."""
    created = entry.get("created")
    if isinstance(created, int | float) and abs(now - created) < FRESH_CREATED_SECONDS:
        return {key: value for key, value in entry.items() if key != "created"}
    return entry


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
        # The backend answers, but gives no model list: names pass through unresolved.
        self._unlisted = False

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
        if model is None and not self._unlisted:
            self._refresh_if_older_than(_MISS_REFRESH_SECONDS)
            model = self._by_key.get(key)
        if model is not None:
            return model
        if self._mapping.default_model:
            return self._model(ollama_name(requested), self._mapping.default_model)
        if self._unlisted:
            # Nothing to check the name against: the backend will say if it does not know it.
            return self._model(ollama_name(requested), requested.removesuffix(":latest"))
        raise model_not_found(requested)

    def fetched_ago(self) -> float:
        """Seconds since the backend last answered `/models` (infinite if it never has)."""
        return time.monotonic() - self._fetched_at

    def refresh(self, timeout: float | None = None) -> None:
        """Fetches the model list now (the readiness probe); raises the backend's error."""
        with self._lock:
            self._fetch(timeout)

    def _refresh_if_older_than(self, seconds: float) -> None:
        if time.monotonic() - self._fetched_at < seconds:
            return
        with self._lock:
            if time.monotonic() - self._fetched_at < seconds:
                return  # another greenlet refreshed while this one waited
            try:
                self._fetch(None)
            except BackendError:
                if self._by_key or self._unlisted:
                    return  # keep serving the last good list while the backend is down
                raise

    def _fetch(self, timeout: float | None) -> None:
        backend = self._backend
        response = backend.send("GET", MODELS_PATH, timeout=timeout)
        if response.status_code in UNLISTED_STATUSES:
            response.close()
            if not self._unlisted:
                log.warning(
                    "backend %s answers %s to GET %s: model names are passed through as "
                    "clients send them",
                    backend.display,
                    response.status_code,
                    MODELS_PATH,
                )
            backend.no_dialect_clues(f"HTTP {response.status_code}")
            self._unlisted = True
            self._install({"data": []})
        else:
            raise_for_status(response)
            listing = parse_json_body(response, MODELS_PATH)
            backend.learn_dialect(listing, response.headers)
            self._unlisted = False
            self._install(listing)
        self._fetched_at = time.monotonic()

    def _model(self, name: str, backend_id: str, info: dict[str, Any] | None = None) -> Model:
        return Model(name, backend_id, info or {}, self._mapping.models.get(backend_id, {}))

    def _install(self, listing: Any) -> None:
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            raise BackendError("backend's /models answer has no data list", 502)
        now = time.time()
        infos = {
            entry["id"]: _without_fresh_created(entry, now)
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
