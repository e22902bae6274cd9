"""A circuit breaker that never serialises backend calls.

pybreaker's `call()` holds an RLock for the whole wrapped call, so wrapping the HTTP request would
queue every backend call of a worker behind the slowest one (docs/stack.md). pybreaker is used here
only as the state machine: the I/O happens outside, and its outcome is fed in afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import pybreaker

from . import metrics

log = logging.getLogger(__name__)


def _succeed() -> None:
    return None


def _fail(exc: BaseException) -> NoReturn:
    raise exc


class StateReporter(pybreaker.CircuitBreakerListener):
    """Publishes every state change: the state gauge, the transitions counter, a log line."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        metrics.breaker_state(self.backend, new_state.name)
        level = logging.WARNING if new_state.name == pybreaker.STATE_OPEN else logging.INFO
        old = old_state.name if old_state is not None else "none"
        log.log(
            level,
            "circuit breaker of backend %s: %s -> %s",
            self.backend,
            old,
            new_state.name,
            extra={"backend": self.backend},
        )


class BackendBreaker:
    def __init__(
        self,
        fail_max: int,
        reset_timeout: float,
        listeners: Iterable[pybreaker.CircuitBreakerListener] = (),
        *,
        backend: str = "default",
    ) -> None:
        self._storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            state_storage=self._storage,
            name=backend,
            listeners=[StateReporter(backend), *listeners],
        )
        metrics.breaker_state(backend, pybreaker.STATE_CLOSED, changed=False)

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through; 0 when calls may go now."""
        if self._breaker.current_state != pybreaker.STATE_OPEN:
            return 0.0
        opened = self._storage.opened_at
        if opened is None:
            return 0.0
        reopen = opened + timedelta(seconds=self._breaker.reset_timeout)
        return max(0.0, (reopen - datetime.now(UTC)).total_seconds())

    def record_success(self) -> None:
        # CircuitBreakerError: another greenlet opened it meanwhile; this success changes nothing.
        with contextlib.suppress(pybreaker.CircuitBreakerError):
            self._breaker.call(_succeed)

    def record_failure(self, exc: BaseException) -> None:
        # The re-raised exception is the input being counted, not a problem here.
        with contextlib.suppress(BaseException):
            self._breaker.call(_fail, exc)
