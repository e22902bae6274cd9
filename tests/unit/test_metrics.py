"""The record functions and the objects that feed them: bounded labels, exact counts."""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import psutil
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

from app import metrics, process_id, procstats
from app.backend import Backend
from app.breaker import BackendBreaker
from app.config import Settings
from app.errors import BackendError
from app.outcomes import Outcome


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def fresh_models(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    models: set[str] = set()
    monkeypatch.setattr(metrics, "_models", models)
    monkeypatch.setattr(metrics, "MAX_MODELS", 3)
    return models


def test_model_labels_are_capped_per_process(fresh_models: set[str]) -> None:
    assert [metrics.model_label(f"m{i}") for i in range(5)] == ["m0", "m1", "m2", "other", "other"]
    assert metrics.model_label("m1") == "m1"  # a known model keeps its label
    assert fresh_models == {"m0", "m1", "m2"}


def test_an_absurdly_long_model_id_is_other(fresh_models: set[str]) -> None:
    assert metrics.model_label("x" * 201) == "other"
    assert not fresh_models


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/chat/completions", "/chat/completions"),
        ("/models", "/models"),
        ("/models/org/some-model", "other"),
        ("/responses", "/responses"),
        ("/files/file-abc", "other"),
    ],
)
def test_backend_path_labels_are_a_fixed_set(path: str, label: str) -> None:
    assert metrics.backend_path_label(path) == label


@pytest.mark.parametrize(
    ("usage", "pieces", "expected"),
    [
        ({"prompt_tokens": 7, "completion_tokens": 3}, 9, (7, 3)),
        (None, 9, (0, 9)),  # no usage: each streamed piece is a token
        ({"prompt_tokens": 7}, 2, (7, 2)),
        ({"prompt_tokens": "7", "completion_tokens": None}, 0, (0, 0)),
        ({"prompt_tokens": -1, "completion_tokens": 0}, 4, (0, 0)),
    ],
)
def test_tokens_come_from_usage_or_pieces(
    usage: dict[str, object] | None, pieces: int, expected: tuple[int, int]
) -> None:
    labels = {"endpoint": "/unit", "model": "tokens-model"}
    before = (
        sample("proxy_prompt_tokens_total", **labels),
        sample("proxy_completion_tokens_total", **labels),
    )
    assert metrics.record_tokens("/unit", "tokens-model", usage, pieces) == expected
    assert sample("proxy_prompt_tokens_total", **labels) - before[0] == expected[0]
    assert sample("proxy_completion_tokens_total", **labels) - before[1] == expected[1]


def test_a_stream_is_in_flight_until_closed_and_ttft_is_observed_once() -> None:
    labels = {"endpoint": "/unit-stream", "model": "m"}
    watch = metrics.StreamWatch("/unit-stream", "m", started=0.0)
    watch.open()
    assert sample("proxy_streams_in_flight", endpoint="/unit-stream") == 1
    watch.first_chunk()
    watch.first_chunk()
    assert sample("proxy_time_to_first_token_seconds_count", **labels) == 1
    duration = watch.close(Outcome.CLIENT_DISCONNECT)
    assert duration > 0
    assert sample("proxy_streams_in_flight", endpoint="/unit-stream") == 0
    assert sample("proxy_stream_duration_seconds_count", **labels) == 1
    outcome = {"endpoint": "/unit-stream", "outcome": "client_disconnect"}
    assert sample("proxy_stream_outcomes_total", **outcome) == 1


@pytest.mark.parametrize(("status", "kind"), [(200, None), (404, "http_4xx"), (503, "http_5xx")])
def test_backend_answers_are_timed_and_errors_counted_by_kind(
    status: int, kind: str | None
) -> None:
    kinds = ("http_4xx", "http_5xx")
    before = [sample("proxy_backend_errors_total", backend="b1", kind=k) for k in kinds]
    timed = {"backend": "b1", "path": "/embeddings"}
    count = sample("proxy_backend_request_duration_seconds_count", **timed)
    metrics.backend_answered("b1", "/embeddings", 0.2, status)
    assert sample("proxy_backend_request_duration_seconds_count", **timed) == count + 1
    after = [sample("proxy_backend_errors_total", backend="b1", kind=k) for k in kinds]
    assert [b - a for a, b in zip(before, after, strict=True)] == [k == kind for k in kinds]


def test_breaker_transitions_drive_the_state_gauge() -> None:
    opened = sample("proxy_breaker_transitions_total", backend="b2", to="open")
    breaker = BackendBreaker(fail_max=2, reset_timeout=60, backend="b2")
    assert sample("proxy_breaker_state", backend="b2") == 0
    breaker.record_failure(BackendError("x"))
    assert sample("proxy_breaker_state", backend="b2") == 0
    breaker.record_failure(BackendError("x"))
    assert sample("proxy_breaker_state", backend="b2") == 2
    assert sample("proxy_breaker_transitions_total", backend="b2", to="open") == opened + 1
    # One backend's breaker leaves the others' alone.
    assert sample("proxy_breaker_state", backend="b3") == 0
    BackendBreaker(fail_max=2, reset_timeout=60, backend="b2")  # a new worker's starts closed


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_retries_and_the_final_error_are_counted() -> None:
    settings = Settings(backend_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=1)
    backend = Backend(settings)
    labels = {"backend": "default", "kind": "connect"}
    retries = sample("proxy_backend_retries_total", **labels)
    errors = sample("proxy_backend_errors_total", **labels)
    with pytest.raises(BackendError, match="connection refused"):
        backend.send("GET", "/models")
    assert sample("proxy_backend_retries_total", **labels) == retries + 1
    assert sample("proxy_backend_errors_total", **labels) == errors + 1


def test_an_open_breaker_is_counted_as_a_refusal() -> None:
    backend = Backend(Settings(backend_url="http://127.0.0.1:9/v1"))
    backend.breaker = BackendBreaker(fail_max=1, reset_timeout=60)
    backend.breaker.record_failure(BackendError("x"))
    labels = {"backend": "default", "kind": "breaker_open"}
    refused = sample("proxy_backend_errors_total", **labels)
    with pytest.raises(BackendError):
        backend.send("GET", "/models")
    assert sample("proxy_backend_errors_total", **labels) == refused + 1


def test_process_sampling_sets_this_process_gauges() -> None:
    procstats.sample_process(psutil.Process())
    assert sample("proxy_worker_resident_memory_bytes") > 1_000_000
    assert sample("proxy_worker_open_fds") > 0
    assert sample("proxy_worker_cpu_seconds") > 0


def test_without_a_multiprocess_dir_each_app_gets_a_private_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    first, second = Flask("a"), Flask("b")
    # A shared registry would refuse the second app's metrics (duplicated timeseries).
    assert metrics.init_request_metrics(first).registry is not REGISTRY
    assert (
        metrics.init_request_metrics(second).registry
        is not first.extensions[metrics.EXTENSION].registry
    )


def test_under_gunicorn_the_exporter_writes_to_the_shared_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    exporter = metrics.init_request_metrics(Flask("worker"))
    assert isinstance(exporter, GunicornPrometheusMetrics)


def test_the_sampler_samples_at_once_then_in_the_background() -> None:
    sampler = procstats.start_process_sampler(interval=3600)
    assert sampler.daemon
    assert sampler.is_alive()
    assert sample("proxy_worker_resident_memory_bytes") > 0


def test_a_forked_process_writes_under_its_own_process_id() -> None:
    # The id prometheus_client files values under is cached; a fork must not inherit it, or
    # two workers would add to one file and the master's sum would lose counts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        child = os.fork()
    if child == 0:
        os._exit(0 if process_id.pid() == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert process_id.pid() == os.getpid()
