"""Prometheus metrics: the metric objects, small record functions, and the request exporter.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and the
master serves the sum on METRICS_PORT (gunicorn.conf.py). The record functions take plain
values, never Flask objects, so stream generators can call them after the request context is
gone. Label values are bounded: endpoints are route templates, models are backend ids the
catalogue resolved (capped per process), kinds and outcomes are fixed sets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

from . import process_id
from .outcomes import Outcome

# In multiprocess mode prometheus_client asks for the process id before every value it writes,
# so that a forked child never writes to its parent's files: it gets the kept one.
if values.ValueClass is not values.MutexValue:  # PROMETHEUS_MULTIPROC_DIR is set
    value_class = cast(Callable[..., Any], values.MultiProcessValue)  # untyped upstream
    values.ValueClass = value_class(process_identifier=process_id.pid)

EXTENSION = "ollama_proxy_metrics"
# Distinct model label values per process; beyond it a model is counted as "other". Only
# resolved backend ids reach this point, so an attacker's random names never become labels.
MAX_MODELS = 50
OTHER = "other"
UNKNOWN_MODEL = "unknown"  # /v1 pass-through: the body is relayed unparsed
# Backend paths worth a label of their own; pass-through paths outside this set are "other".
BACKEND_PATHS = frozenset(
    {"/chat/completions", "/completions", "/embeddings", "/models", "/messages", "/responses"}
)
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}

# LLM requests take seconds to minutes: the client library's default buckets stop at 10 s.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
STREAM_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)

TIME_TO_FIRST_TOKEN = Histogram(
    "proxy_time_to_first_token_seconds",
    "From the request's arrival to the first generated chunk written to the client",
    ["endpoint", "model"],
    buckets=TTFT_BUCKETS,
)
STREAM_DURATION = Histogram(
    "proxy_stream_duration_seconds",
    "From the request's arrival to the end of the streamed response, whatever the outcome",
    ["endpoint", "model"],
    buckets=STREAM_BUCKETS,
)
STREAMS_IN_FLIGHT = Gauge(
    "proxy_streams_in_flight",
    "Streamed responses being relayed now, summed over live workers",
    ["endpoint"],
    multiprocess_mode="livesum",
)
STREAM_OUTCOMES = Counter(
    "proxy_stream_outcomes_total",
    "How streamed responses ended: completed, client_disconnect, backend_error, shutdown, error",
    ["endpoint", "outcome"],
)
PROMPT_TOKENS = Counter(
    "proxy_prompt_tokens_total", "Prompt tokens the backend reported", ["endpoint", "model"]
)
COMPLETION_TOKENS = Counter(
    "proxy_completion_tokens_total",
    "Generated tokens the backend reported (streamed pieces when it reports no usage)",
    ["endpoint", "model"],
)
# `backend` is a name from the configuration (BACKENDS_FILE, or "default"): a closed set.
BACKEND_LATENCY = Histogram(
    "proxy_backend_request_duration_seconds",
    "From sending a backend request to its response headers (retries included)",
    ["backend", "path"],
    buckets=REQUEST_BUCKETS,
)
BACKEND_ERRORS = Counter(
    "proxy_backend_errors_total",
    "Failed backend exchanges by kind: connect, timeout, http_4xx, http_5xx, stream_broken, "
    "stream_timeout, breaker_open",
    ["backend", "kind"],
)
BACKEND_RETRIES = Counter(
    "proxy_backend_retries_total",
    "Backend requests sent again: connect (connection not made), stale_connection",
    ["backend", "kind"],
)
BACKEND_IN_FLIGHT = Gauge(
    "proxy_backend_requests_in_flight",
    "Backend requests being answered now (streams until their end), summed over live workers",
    ["backend"],
    multiprocess_mode="livesum",
)
FAILOVERS = Counter(
    "proxy_failovers_total",
    "Requests sent to another deployment after this backend failed before answering",
    ["backend"],
)
FALLBACKS = Counter(
    "proxy_fallbacks_total",
    "Requests served by a fallback model after every deployment of theirs failed",
)
BREAKER_STATE = Gauge(
    "proxy_breaker_state",
    "Circuit breaker state, worst over live workers: 0 closed, 1 half-open, 2 open",
    ["backend"],
    multiprocess_mode="livemax",
)
BREAKER_TRANSITIONS = Counter(
    "proxy_breaker_transitions_total",
    "Circuit breaker state changes, by new state",
    ["backend", "to"],
)

_models: set[str] = set()


def model_label(backend_id: str) -> str:
    """The label for a model the catalogue resolved; at most MAX_MODELS values per process."""
    if backend_id in _models:
        return backend_id
    if len(_models) < MAX_MODELS and len(backend_id) <= 200:
        _models.add(backend_id)
        return backend_id
    return OTHER


def backend_path_label(path: str) -> str:
    return path if path in BACKEND_PATHS else OTHER


def record_tokens(
    endpoint: str, model: str, usage: dict[str, Any] | None, pieces: int = 0
) -> tuple[int, int]:
    """Counts the backend's usage (or the streamed pieces); returns (prompt, completion)."""
    usage = usage or {}
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    prompt = prompt if isinstance(prompt, int) and prompt > 0 else 0
    completion = completion if isinstance(completion, int) and completion >= 0 else pieces
    if prompt:
        PROMPT_TOKENS.labels(endpoint, model).inc(prompt)
    if completion:
        COMPLETION_TOKENS.labels(endpoint, model).inc(completion)
    return prompt, completion


class StreamWatch:
    """One streamed response: in flight from `open` to `close`, TTFT at `first_chunk`."""

    __slots__ = ("endpoint", "first", "model", "started")

    def __init__(self, endpoint: str, model: str, started: float) -> None:
        self.endpoint = endpoint
        self.model = model
        self.started = started  # time.perf_counter() when the request arrived
        self.first: float | None = None

    def open(self) -> None:
        STREAMS_IN_FLIGHT.labels(self.endpoint).inc()

    def first_chunk(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
            TIME_TO_FIRST_TOKEN.labels(self.endpoint, self.model).observe(self.first - self.started)

    def close(self, outcome: Outcome) -> float:
        """Leaves the in-flight count; returns the stream's duration in seconds."""
        STREAMS_IN_FLIGHT.labels(self.endpoint).dec()
        duration = time.perf_counter() - self.started
        STREAM_DURATION.labels(self.endpoint, self.model).observe(duration)
        STREAM_OUTCOMES.labels(self.endpoint, outcome.value).inc()
        return duration


def backend_answered(backend: str, path: str, seconds: float, status: int) -> None:
    BACKEND_LATENCY.labels(backend, backend_path_label(path)).observe(seconds)
    if status >= 500:
        BACKEND_ERRORS.labels(backend, "http_5xx").inc()
    elif status >= 400:
        BACKEND_ERRORS.labels(backend, "http_4xx").inc()


def backend_error(backend: str, kind: str) -> None:
    BACKEND_ERRORS.labels(backend, kind).inc()


def backend_retry(backend: str, kind: str) -> None:
    BACKEND_RETRIES.labels(backend, kind).inc()


def backend_in_flight(backend: str, change: int) -> None:
    BACKEND_IN_FLIGHT.labels(backend).inc(change)


def failover(backend: str) -> None:
    FAILOVERS.labels(backend).inc()


def fallback() -> None:
    FALLBACKS.inc()


def breaker_state(backend: str, state: str, *, changed: bool = True) -> None:
    BREAKER_STATE.labels(backend).set(BREAKER_STATES.get(state, 2))
    if changed:
        BREAKER_TRANSITIONS.labels(backend, state).inc()


def init_request_metrics(app: Flask) -> PrometheusMetrics:
    """The exporter's per-route request metrics; probes are not requests worth counting."""
    options: dict[str, Any] = {
        "group_by": "url_rule",  # route templates, not raw paths: scanners cannot add series
        "excluded_paths": ["^/health$", "^/ready$", "^/metrics$"],
        "buckets": REQUEST_BUCKETS,
    }
    metrics: PrometheusMetrics
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn: values go to the shared files, the master serves them.
        metrics = GunicornPrometheusMetrics(app, **options)
    else:
        # Tests and single-process runs: a private registry, so many apps can coexist.
        metrics = PrometheusMetrics(app, registry=CollectorRegistry(), path=None, **options)
    app.extensions[EXTENSION] = metrics
    return metrics
