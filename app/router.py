"""Which backend serves a request: one of the model's deployments, then the others, then the
model's fallbacks.

Balancing is by least requests in flight (this worker's view), divided by the backend's weight.
Round robin would count requests, but LLM requests range from milliseconds to minutes: it
would keep sending new streams to a replica already full of long ones. In-flight requests are
what fills a model server (its batch, its KV cache), and a weight says how much more one
server takes than another. Ties go to a random one, so the workers do not all pick the same.

Failover: a request goes to the next deployment only when the backend failed before it could
have started on it (connection refused or reset, connect timeout, breaker open, or an answer
of 429/502/503/504), at most once per deployment, and never once a byte of the answer reached
the client (the router is only around the call that gets the backend's status). When every
deployment failed so, the model's fallbacks (BACKENDS_FILE) are tried in order.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from . import metrics
from .backend import Backend
from .errors import BackendError, ProxyError
from .flavours import ThinkStyle
from .translate.models import Deployment, Model
from .translate.ollama.to_backend import Target

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    backend: Backend
    target: Target
    # No deployment or fallback is left after this one: a relayed error is the answer.
    last: bool


class Router:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        resolve: Callable[[str], Model],
        fallbacks: Mapping[str, tuple[str, ...]],
        thinking_control: str,
    ) -> None:
        self.backends = backends
        self._resolve = resolve
        self._fallbacks = fallbacks
        self._thinking_control = thinking_control

    def exchange(self, model: Model, call: Callable[[Route], T]) -> T:
        """`call` on a deployment of `model`; on another when it fails before the backend could
        have started; then on the model's fallbacks. The last failure is raised."""
        current = model
        names = self._fallbacks.get(model.name) or self._fallbacks.get(
            model.name.removesuffix(":latest"), ()
        )
        failure: ProxyError | None = None
        for position in range(1 + len(names)):
            if position:
                try:
                    current = self._resolve(names[position - 1])
                except ProxyError as exc:  # a fallback no backend serves now: the next one
                    log.warning("fallback %s skipped: %s", names[position - 1], exc.message)
                    continue
                metrics.fallback()
            remaining = list(current.deployments)
            while remaining:
                deployment = self.pick(remaining)
                remaining.remove(deployment)
                route = self.route(deployment, last=not remaining and position == len(names))
                try:
                    return call(route)
                except ProxyError as exc:
                    if not exc.failover:
                        raise
                    failure = exc
                    metrics.failover(deployment.backend)
                    log.info(
                        "backend %s failed before answering (%s): trying another",
                        deployment.backend,
                        exc.message,
                        extra={"backend": deployment.backend},
                    )
        raise failure or BackendError(f"no backend serves {model.name}")

    def pick(self, deployments: list[Deployment]) -> Deployment:
        """The deployment with the least requests in flight for its weight, among those whose
        breaker lets calls through (all of them when none does: the breaker answers then)."""
        backends = self.backends
        open_for_calls = [d for d in deployments if backends[d.backend].breaker.retry_in() == 0]
        candidates = open_for_calls or deployments
        if len(candidates) == 1:
            return candidates[0]

        def load(deployment: Deployment) -> float:
            backend = backends[deployment.backend]
            return (backend.in_flight + 1) / backend.spec.weight

        lightest = min(load(d) for d in candidates)
        return random.choice([d for d in candidates if load(d) == lightest])  # noqa: S311

    def route(self, deployment: Deployment, *, last: bool = True) -> Route:
        backend = self.backends[deployment.backend]
        flavour = backend.flavour
        control = self._thinking_control
        style = flavour.think_style if control == "auto" else ThinkStyle(control)
        return Route(backend, Target(deployment.backend_id, flavour, style), last)
