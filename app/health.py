"""Probes for Kubernetes: `/health` (liveness) and `/ready` (readiness).

Neither needs an API key (access.OPEN_PATHS) nor counts as a request in the metrics. Liveness
only says the worker answers. Readiness says the backend's `/v1/models` answered recently: a
recent fetch by ordinary traffic counts, otherwise the probe fetches once with a short timeout,
and a failure is remembered for a few seconds so probes cannot hammer a struggling backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask, Response

from .catalogue import Catalogue
from .errors import ProxyError
from .replies import json_response
from .services import services

# A model list fetched this recently (or within MODELS_CACHE_TTL, if longer) means ready.
READY_WINDOW = 30.0
# Seconds a failed check answers for itself before the backend is asked again (per worker).
FAILURE_MEMORY = 5.0
# Kubernetes' default probe timeout is 1 s and a probe may need to connect first.
PROBE_TIMEOUT = 2.0


class Readiness:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at = float("-inf")
        self._error = ""

    def check(self, catalogue: Catalogue, window: float) -> str | None:
        """None when ready, else why not."""
        if catalogue.fetched_ago() <= window:
            return None
        now = self._clock()
        if now - self._failed_at < FAILURE_MEMORY:
            return self._error
        try:
            catalogue.refresh(timeout=PROBE_TIMEOUT)
        except ProxyError as exc:
            self._failed_at, self._error = now, exc.message
            return exc.message
        return None


def init_health(app: Flask) -> None:
    readiness = Readiness()

    @app.get("/health")
    def health() -> Response:
        return json_response({"status": "ok"})

    @app.get("/ready")
    def ready() -> Response:
        service = services()
        window = max(READY_WINDOW, service.settings.models_cache_ttl)
        error = readiness.check(service.catalogue, window)
        if error is None:
            return json_response({"status": "ready"})
        return json_response({"status": "unavailable", "error": error}, 503)
