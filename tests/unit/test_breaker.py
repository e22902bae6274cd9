"""The backend circuit breaker: pybreaker as a state machine fed with outcomes."""

from __future__ import annotations

import threading
import time

import pybreaker
import pytest

from app.breaker import BackendBreaker
from app.errors import BackendError

FAILURE = ConnectionError("connection refused")


class Recorder(pybreaker.CircuitBreakerListener):
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self.changes.append((str(old_state.name if old_state else None), str(new_state.name)))


def fail(breaker: BackendBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure(FAILURE)


def test_a_new_breaker_is_closed() -> None:
    breaker = BackendBreaker(fail_max=3, reset_timeout=30)
    assert breaker.state == "closed"
    assert breaker.retry_in() == 0.0


def test_opens_after_fail_max_consecutive_failures() -> None:
    breaker = BackendBreaker(fail_max=3, reset_timeout=30)
    fail(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.retry_in() == 0.0
    fail(breaker, 1)
    assert breaker.state == "open"
    assert 29.0 < breaker.retry_in() <= 30.0


def test_retry_in_counts_down_while_open() -> None:
    breaker = BackendBreaker(fail_max=1, reset_timeout=0.5)
    fail(breaker, 1)
    first = breaker.retry_in()
    time.sleep(0.05)
    second = breaker.retry_in()
    assert 0 < second < first <= 0.5


def test_a_success_resets_the_failure_count() -> None:
    breaker = BackendBreaker(fail_max=3, reset_timeout=30)
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"


def test_a_late_success_does_not_close_an_open_breaker_early() -> None:
    breaker = BackendBreaker(fail_max=1, reset_timeout=30)
    fail(breaker, 1)
    breaker.record_success()  # an older call that finished after the breaker opened
    assert breaker.state == "open"
    assert breaker.retry_in() > 29


def test_half_open_after_the_reset_timeout_then_closed_on_success() -> None:
    recorder = Recorder()
    breaker = BackendBreaker(fail_max=2, reset_timeout=0.05, listeners=[recorder])
    fail(breaker, 2)
    assert breaker.retry_in() > 0
    time.sleep(0.08)
    assert breaker.retry_in() == 0.0  # a trial call may go now
    breaker.record_success()
    assert breaker.state == "closed"
    assert recorder.changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_a_failed_trial_call_reopens_at_once() -> None:
    breaker = BackendBreaker(fail_max=5, reset_timeout=0.05)
    fail(breaker, 5)
    time.sleep(0.08)
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.retry_in() > 0


def test_failures_are_recorded_without_raising() -> None:
    breaker = BackendBreaker(fail_max=3, reset_timeout=30)
    for exc in (TimeoutError("slow"), OSError("reset"), BackendError("HTTP 500")):
        breaker.record_failure(exc)
    assert breaker.state == "open"


@pytest.mark.parametrize(("fail_max", "state"), [(400, "open"), (401, "closed")])
def test_concurrent_outcomes_are_all_counted(fail_max: int, state: str) -> None:
    # No I/O runs under the breaker's lock, so threads only contend for a counter update.
    breaker = BackendBreaker(fail_max=fail_max, reset_timeout=30)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        fail(breaker, 50)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert breaker.state == state
