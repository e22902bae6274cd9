"""The backends' models under Ollama names: fetched from each backend's `/v1/models`, cached
briefly, merged, resolved.

A model served by several backends (under the same name, after each backend's prefix) is one
model with several deployments. A backend that stops answering drops out of the listings once
its cache expires, and comes back when it answers again; a listing never fails because one
backend does. Names keep resolving to the last models a down backend listed, so a request for
them gets the backend's own error (unreachable, breaker open) rather than a misleading 404.

The mapping file's aliases apply both ways: clients may ask for an alias, and listings show the
alias instead of the name it stands for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import gevent

from .backend import Backend
from .backend_errors import parse_json_body, raise_for_status
from .config import ModelMapping
from .errors import BackendError, ProxyError, model_not_found
from .translate.models import Deployment, Model, name_key, ollama_name

log = logging.getLogger(__name__)

MODELS_PATH = "/models"
# After a miss, a name may be new on a backend: refetch, but not more often than this.
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


class _Source:
    """One backend's model list, as last fetched."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        declared = backend.spec.models
        # Backend id -> its /v1/models entry; a declared list is the truth, entries add detail.
        self.infos: dict[str, dict[str, Any]] = {model: {} for model in declared or ()}
        self.answered_at = float("-inf")  # the backend last answered (a list, or none to give)
        self.tried_at = float("-inf")
        self.unlisted = False  # it answers, but gives no model list
        self.error: ProxyError | None = None
        self.lock = threading.Lock()  # cooperative under gevent: one fetch at a time

    def fresh(self, seconds: float) -> bool:
        if self.answered_at == float("-inf"):
            # Never answered: every request asks again (each wave of them once), so a backend
            # that comes up is seen at once and one that stays down feeds its breaker.
            return False
        return time.monotonic() - self.tried_at < seconds

    def live(self, ttl: float) -> bool:
        """Whether its models belong in listings: it answered within the cache's lifetime."""
        return time.monotonic() - self.answered_at <= max(ttl, _MISS_REFRESH_SECONDS)

    def fetch(self, timeout: float | None) -> None:
        try:
            self._fetch(timeout)
        except ProxyError as exc:
            self.error = exc
            raise
        finally:
            # At the end: a caller that waited for this fetch finds it done, and fresh.
            self.tried_at = time.monotonic()
        self.error = None
        self.answered_at = self.tried_at

    def _fetch(self, timeout: float | None) -> None:
        backend = self.backend
        response = backend.send("GET", MODELS_PATH, timeout=timeout)
        if response.status_code in UNLISTED_STATUSES:
            response.close()
            if not self.unlisted:
                log.warning(
                    "backend %s answers %s to GET %s: model names are passed through as "
                    "clients send them",
                    backend.display,
                    response.status_code,
                    MODELS_PATH,
                    extra={"backend": backend.name},
                )
            backend.no_dialect_clues(f"HTTP {response.status_code}")
            self.unlisted = True
        else:
            raise_for_status(response)
            listing = parse_json_body(response, MODELS_PATH)
            entries = listing.get("data") if isinstance(listing, dict) else None
            if not isinstance(entries, list):
                raise BackendError("backend's /models answer has no data list")
            backend.learn_dialect(listing, response.headers)
            self.unlisted = False
            self._install(entries)

    def _install(self, entries: list[Any]) -> None:
        now = time.time()
        found = {
            entry["id"]: _without_fresh_created(entry, now)
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]
        }
        declared = self.backend.spec.models
        if declared is None:
            self.infos = found
        else:
            self.infos = {model: found.get(model, {}) for model in declared}


class Catalogue:
    def __init__(self, backends: Sequence[Backend], mapping: ModelMapping, ttl: float) -> None:
        self._sources = [_Source(backend) for backend in backends]
        self._mapping = mapping
        self._ttl = ttl
        self._aliases = {name_key(alias): target for alias, target in mapping.aliases.items()}
        self._models: list[Model] = []  # what listings show: live backends only
        self._by_key: dict[str, Model] = {}  # what names resolve to: every backend's last list

    def models(self) -> list[Model]:
        """Every model clients may use, aliases first, in the backends' order."""
        self._refresh_older_than(self._ttl)
        self._raise_if_unavailable()
        return self._models

    def resolve(self, requested: str) -> Model:
        """The model a client's name stands for, or Ollama's 404."""
        key = name_key(requested)
        target = self._aliases.get(key)
        fetched = self._refresh_older_than(self._ttl)
        model = self._by_key.get(key)
        if model is None and target is None and not fetched:
            self._refresh_older_than(_MISS_REFRESH_SECONDS)
            model = self._by_key.get(key)
        if model is not None:
            return model
        if target is not None:
            # An explicit alias is trusted even when no backend lists its target, or none can
            # list anything right now: its first backend serves it under that id.
            return self._single(ollama_name(requested), target)
        if self._mapping.default_model:
            return self._resolve_default(requested)
        self._raise_if_undecided()
        unlisted = next((source for source in self._sources if source.unlisted), None)
        if unlisted is not None:
            # Nothing to check the name against: the backend will say if it does not know it.
            return self._single(
                ollama_name(requested), requested.removesuffix(":latest"), unlisted.backend
            )
        raise model_not_found(requested)

    def fetched_ago(self) -> float:
        """Seconds since some backend last answered `/models` (infinite if none ever has)."""
        return time.monotonic() - max(source.answered_at for source in self._sources)

    def refresh(self, timeout: float | None = None) -> None:
        """Fetches every model list now (the readiness probe); raises a backend's error only
        when no backend answers."""
        errors = self._fetch_all(self._sources, timeout)
        if len(errors) == len(self._sources):
            raise errors[0]

    def _resolve_default(self, requested: str) -> Model:
        default = self._mapping.default_model or ""
        model = self._by_key.get(name_key(default))
        if model is not None:
            return Model(ollama_name(requested), model.deployments, model.declared)
        return self._single(ollama_name(requested), default)

    def _single(self, name: str, backend_id: str, backend: Backend | None = None) -> Model:
        backend = backend or self._sources[0].backend
        deployment = Deployment(backend.name, backend_id)
        return Model(name, (deployment,), self._mapping.models.get(backend_id, {}))

    def _refresh_older_than(self, seconds: float) -> bool:
        """Fetches the lists older than `seconds`; whether there were any."""
        stale = [source for source in self._sources if not source.fresh(seconds)]
        if stale:
            self._fetch_all(stale, None)
        return bool(stale)

    def _raise_if_unavailable(self) -> None:
        """Nothing known and no backend ever answered: the backend's own error says why (an
        unknown-model 404 would send `ollama run` pulling)."""
        if self._by_key or any(source.answered_at > float("-inf") for source in self._sources):
            return
        error = next((source.error for source in self._sources if source.error), None)
        if error is not None:
            raise error

    def _raise_if_undecided(self) -> None:
        """A backend whose list was never seen may serve the name: its error is the answer, not
        a 404 (which would send `ollama run` pulling a model that is briefly unreachable)."""
        for source in self._sources:
            if source.answered_at == float("-inf") and source.error is not None:
                raise source.error

    def _fetch_all(self, sources: list[_Source], timeout: float | None) -> list[ProxyError]:
        """Fetches the sources' lists side by side (one slow backend does not add its delay to
        the others'), then rebuilds the index; returns the errors of those that failed."""
        errors: list[ProxyError] = []
        decided = time.monotonic()

        def fetch(source: _Source) -> None:
            with source.lock:
                if source.tried_at >= decided:
                    return  # another greenlet fetched it while this one waited
                try:
                    source.fetch(timeout)
                except ProxyError as exc:
                    errors.append(exc)

        if len(sources) == 1:
            fetch(sources[0])
        else:
            gevent.joinall([gevent.spawn(fetch, source) for source in sources])
        self._index()
        return errors

    def _index(self) -> None:
        groups: dict[str, tuple[str, list[Deployment]]] = {}
        live_keys: set[str] = set()
        # When no backend answers at all, the last lists they gave are still the best answer.
        anyone = any(source.live(self._ttl) for source in self._sources)
        for source in self._sources:
            live = source.live(self._ttl) or not anyone
            prefix = source.backend.spec.prefix
            for backend_id, info in source.infos.items():
                name = ollama_name(prefix + backend_id)
                key = name_key(name)
                _, deployments = groups.setdefault(key, (name, []))
                deployments.append(Deployment(source.backend.name, backend_id, info))
                if live:
                    live_keys.add(key)
        models: list[Model] = []
        by_key: dict[str, Model] = {}
        aliased: set[str] = set()
        for alias, target in self._mapping.aliases.items():
            group = groups.get(name_key(target))
            if group is not None:
                model = self._make(ollama_name(alias), group[1])
                by_key[name_key(alias)] = model
                if name_key(target) in live_keys:
                    models.append(model)
                aliased.add(name_key(target))
        for key, (name, deployments) in groups.items():
            model = self._make(name, deployments)
            # Backend ids stay usable even when an alias hides them from listings.
            by_key.setdefault(key, model)
            if key in live_keys and key not in aliased:
                models.append(model)
        self._models, self._by_key = models, by_key

    def _make(self, name: str, deployments: list[Deployment]) -> Model:
        declared = self._mapping.models
        metadata = declared.get(name.removesuffix(":latest")) or declared.get(
            deployments[0].backend_id, {}
        )
        return Model(name, tuple(deployments), metadata)
