"""The one way to talk to the OpenAI-compatible backend.

One pooled `requests.Session` per worker process (it is safe across greenlets), retries for
connection failures only, and the circuit breaker. Every network failure leaves this module as a
`BackendError` whose message names the backend problem (worded by backend_errors.py); request
bodies are encoded by request_json.py.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import HTTPError, ReadTimeoutError
from urllib3.util.retry import Retry

from . import metrics
from .backend_errors import (
    DOWN_STATUSES,
    failure_reason,
    is_stale_socket,
    raise_for_status,
    read_timed_out,
)
from .backends_file import BackendSpec
from .breaker import BackendBreaker
from .config import Settings
from .errors import BackendError
from .flavours import AUTO, Flavour, RequestIdForm, flavour
from .lean_adapter import LeanAdapter
from .request_json import dumps
from .requestid import current, note_upstream, upstream_id
from .translate.detect import detect

log = logging.getLogger(__name__)

USER_AGENT = "ollama-openai-proxy"
# A whole (non-streamed) answer is held in memory to be parsed: a backend that sends more than
# any real answer (the largest are embeddings: 2,048 vectors of 4,096 floats, ~170 MB) is cut
# off, so that an endless body cannot grow the worker until it is killed.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
_READ_SIZE = 64 * 1024
# Prepared-request templates kept per worker (one per backend path the proxy uses, and some).
MAX_TEMPLATES = 64


class CountingRetry(Retry):
    """urllib3's Retry, counting each retry it allows in the metrics (by backend: a subclass
    per backend carries its name, since Retry.new() rebuilds from its own parameters only).

    `response.raw.retries.history` also lists them, but only for requests that finally got a
    response; a request whose retries all failed leaves no response to read it from.
    """

    backend = "default"

    def increment(self, *args: Any, **kwargs: Any) -> Self:
        retry = super().increment(*args, **kwargs)  # raises when no retry is left
        metrics.backend_retry(self.backend, "connect")
        return retry


class Backend:
    """One backend: its pool, timeouts, retries, breaker, dialect and in-flight count."""

    def __init__(
        self,
        settings: Settings,
        breaker: BackendBreaker | None = None,
        spec: BackendSpec | None = None,
    ) -> None:
        spec = spec or settings.backends[0]
        self.spec = spec
        self.name = spec.name
        self.base_url = spec.base_url
        parts = urlsplit(self.base_url)
        # Shown in error messages: host and port only, never credentials embedded in the URL.
        self.display = parts.hostname or "backend"
        if parts.port:
            self.display += f":{parts.port}"
        self.timeout = (spec.connect_timeout, spec.request_timeout)
        self.breaker = breaker or BackendBreaker(
            settings.breaker_fail_max, settings.breaker_reset_timeout, backend=spec.name
        )
        self.verify = settings.verify_ssl
        # The configured flavour, or `generic` until the backend's first model list tells (auto).
        self.flavour: Flavour = flavour("generic" if spec.flavour == AUTO else spec.flavour)
        self.detecting = spec.flavour == AUTO
        # Requests this worker has in flight here (streams until their end): the router's load.
        self.in_flight = 0
        self.session = self._make_session(settings, spec)
        self.adapter = self.session.get_adapter(self.base_url)
        # Resolved once: requests would re-read the proxy variables (and ~/.netrc) every call.
        self.proxies = requests.utils.get_environ_proxies(self.base_url)
        self._templates: dict[tuple[str, str], requests.PreparedRequest] = {}

    def _make_session(self, settings: Settings, spec: BackendSpec) -> requests.Session:
        """The worker's Session for this backend: it owns the pool and the retry policy."""
        session = requests.Session()
        session.trust_env = False
        counting = type("CountingRetry", (CountingRetry,), {"backend": spec.name})
        retry = counting(
            total=settings.max_retries,
            connect=settings.max_retries,  # the request never left: safe for POST too
            read=0,  # once the backend may have seen the request, a retry could duplicate work
            status=0,
            other=0,
            redirect=0,
            backoff_factor=0.1,
            backoff_jitter=0.1,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        adapter = LeanAdapter(
            spec.base_url, pool_connections=4, pool_maxsize=settings.pool_size, max_retries=retry
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        if spec.api_key:
            session.headers["Authorization"] = f"Bearer {spec.api_key}"
        return session

    def url(self, path: str) -> str:
        return self.base_url + path

    def _prepare(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str] | None
    ) -> requests.PreparedRequest:
        """A request ready for the adapter, from a per-(method, path) template.

        Session.request prepares every request from scratch (URL parsing, header and setting
        merges, cookies, hooks): 0.1 ms of CPU per call, a quarter of the proxy's budget for a
        whole chat. The template is prepared once by requests itself and copied per call; the
        adapter still does the sending, so pooling, retries and TLS are requests' own.
        """
        key = (method, path)
        template = self._templates.get(key)
        if template is None:
            template = self.session.prepare_request(requests.Request(method, self.url(path)))
            if len(self._templates) < MAX_TEMPLATES:  # pass-through paths vary: stay bounded
                self._templates[key] = template
        prepared = template.copy()
        if headers:
            prepared.headers.update(headers)
        if body is not None:
            prepared.body = body
            prepared.headers["Content-Length"] = str(len(body))
        return prepared

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """One HTTP exchange; returns whatever status the backend answered with.

        `timeout` replaces both timeouts for a call that must be quick (the readiness probe).
        A streamed 2xx answer counts as a success for the breaker only when the caller reports
        its end (`stream_completed`): a stream that breaks midway is a failure.
        """
        wait = self.breaker.retry_in()
        if wait > 0:
            metrics.backend_error(self.name, "breaker_open")
            seconds = math.ceil(wait)
            raise BackendError(
                f"backend {self.display} is unavailable after repeated failures; "
                f"the proxy will try it again in {seconds}s",
                503,
                {"Retry-After": str(seconds)},
                failover=True,  # skipped, never waited on
            )
        timeouts = self.timeout if timeout is None else (min(self.timeout[0], timeout), timeout)
        uuid_only = self.flavour.request_id is RequestIdForm.UUID
        headers, sent_id = _with_request_id(headers, uuid_only, self.name)
        prepared = self._prepare(method, path, body, headers)
        started = time.perf_counter()
        self._in_flight(+1)
        try:
            response = self._send_with_stale_retry(prepared, stream, timeouts)
            if not stream:
                self._read_whole(response, timeouts[1])  # the body is part of the exchange
        except requests.RequestException as exc:
            self._in_flight(-1)
            self.breaker.record_failure(exc)
            if read_timed_out(exc):
                # It may be generating: no other deployment gets the request.
                metrics.backend_error(self.name, "timeout")
                raise BackendError(
                    f"backend {self.display} did not answer within {timeouts[1]:g}s", 504
                ) from None
            metrics.backend_error(self.name, "connect")
            raise BackendError(
                f"backend {self.display} unreachable: {failure_reason(exc)}", 502, failover=True
            ) from None
        except BaseException:
            self._in_flight(-1)
            raise
        if stream:
            self._release_on_close(response)
        else:
            self._in_flight(-1)
        elapsed = time.perf_counter() - started
        status = response.status_code
        metrics.backend_answered(self.name, path.partition("?")[0], elapsed, status)
        # The breaker is for a backend that is down or hung: a gateway status says so. Any other
        # answer (a fast 500 included: llama-cpp-python answers bad requests so) shows it alive.
        if status in DOWN_STATUSES:
            self.breaker.record_failure(BackendError(f"HTTP {status}"))
        elif not stream or status >= 400:
            self.breaker.record_success()
        if log.isEnabledFor(logging.DEBUG):
            _log_exchange(method, path, response, sent_id, elapsed)
        return response

    def _read_whole(self, response: requests.Response, timeout: float) -> None:
        """The body, read at once into `response.content` (urllib3 pools the connection at its
        end): straight from urllib3, without requests' chunk generator. One over
        MAX_ANSWER_BYTES is refused unread. A body that breaks off is the backend's failure
        after it started on the request: never a failover."""
        try:
            response._content = self._bounded_body(response)
            response._content_consumed = True  # type: ignore[attr-defined]  # requests' own flag
        except (HTTPError, OSError) as exc:
            response.close()
            self.breaker.record_failure(exc)
            if isinstance(exc, ReadTimeoutError):
                metrics.backend_error(self.name, "timeout")
                raise BackendError(
                    f"backend {self.display} did not answer within {timeout:g}s", 504
                ) from None
            metrics.backend_error(self.name, "stream_broken")
            raise BackendError(f"backend {self.display} broke off its answer", 502) from None

    def _bounded_body(self, response: requests.Response) -> bytes:
        raw = response.raw
        length = raw.length_remaining
        if (
            length is not None
            and length <= MAX_ANSWER_BYTES
            and not raw.headers.get("content-encoding")
        ):
            return bytes(raw.read(decode_content=True))  # one read of a size known and bounded
        # No length, or an encoding whose decoded size the length does not bound: in pieces.
        chunks, size = [], 0
        while chunk := raw.read(_READ_SIZE, decode_content=True):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                response.close()
                raise BackendError(
                    f"backend {self.display} sent an answer over "
                    f"{MAX_ANSWER_BYTES // 2**20} MiB; it was not read",
                    502,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _in_flight(self, change: int) -> None:
        self.in_flight += change
        metrics.backend_in_flight(self.name, change)

    def _release_on_close(self, response: requests.Response) -> None:
        """A streamed answer is in flight until it is closed, which every path that ends one
        does (the relay at its end, an error read, a client gone)."""
        close = response.close
        released = False

        def close_and_release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight(-1)
            close()

        response.close = close_and_release  # type: ignore[method-assign]

    def learn_dialect(self, listing: Any, headers: Mapping[str, str]) -> None:
        """With BACKEND_FLAVOUR=auto: the dialect, from the first model list (and its headers)
        the backend gives, said once in the log with its evidence."""
        if not self.detecting:
            return
        self.detecting = False
        lowered = {name.lower(): value for name, value in headers.items()}
        name, evidence = detect(listing, lowered, self.base_url)
        self.flavour = flavour(name)
        log.info(
            "backend %s detected as %s (%s); BACKEND_FLAVOUR sets it explicitly",
            self.display,
            name,
            evidence,
            extra={"flavour": name, "evidence": evidence},
        )

    def no_dialect_clues(self, reason: str) -> None:
        """The backend gives no model list: the dialect stays `generic`, said once."""
        if self.detecting:
            self.detecting = False
            log.info(
                "backend %s gives no model list (%s): using the generic dialect; "
                "BACKEND_FLAVOUR sets it explicitly",
                self.display,
                reason,
            )

    def stream_completed(self) -> None:
        """A streamed answer arrived whole: the backend is healthy."""
        self.breaker.record_success()

    def stream_broke(self, exc: BaseException, kind: str = "stream_broken") -> None:
        """A response that had started failed mid-body: counts for the breaker and metrics."""
        self.breaker.record_failure(exc)
        metrics.backend_error(self.name, kind)

    def _send_with_stale_retry(
        self, prepared: requests.PreparedRequest, stream: bool, timeouts: tuple[float, float]
    ) -> requests.Response:
        def attempt() -> requests.Response:
            return self.adapter.send(
                prepared, stream=True, timeout=timeouts, verify=self.verify, proxies=self.proxies
            )

        # A pooled keep-alive socket the backend closed while idle fails before any response byte
        # ("Connection aborted"); urllib3 does not retry it for POST. One fresh attempt is safe.
        try:
            return attempt()
        except requests.ConnectionError as exc:
            if not is_stale_socket(exc):
                raise
        metrics.backend_retry(self.name, "stale_connection")
        return attempt()

    def post(self, path: str, payload: Any, *, stream: bool = False) -> requests.Response:
        """POST JSON (a value, or already encoded bytes) and return a 2xx response, or raise
        the backend's error as a ProxyError."""
        response = self.send(
            "POST",
            path,
            payload if isinstance(payload, bytes) else dumps(payload),
            stream=stream,
            headers={"Content-Type": "application/json"},
        )
        raise_for_status(response)
        return response


def _log_exchange(
    method: str, path: str, response: requests.Response, sent_id: str | None, elapsed: float
) -> None:
    # The IDs tie this line to the backend's own logs: the one sent, and the one it answered.
    fields = {
        "backend_status": response.status_code,
        "duration_ms": round(elapsed * 1000, 3),
        "upstream_request_id": sent_id,
        "backend_request_id": response.headers.get("X-Request-ID"),
    }
    log.debug(
        "backend answered %s %s: %s",
        method,
        path.partition("?")[0],
        response.status_code,
        extra={key: value for key, value in fields.items() if value is not None},
    )


def _with_request_id(
    headers: Mapping[str, str] | None, uuid_only: bool, backend: str
) -> tuple[Mapping[str, str] | None, str | None]:
    """The headers with this request's ID for the backend (replacing a client's own)."""
    request_id = current()
    if request_id is None:
        return headers, None
    sent = upstream_id(request_id, uuid_only=uuid_only)
    note_upstream(sent, backend)
    merged = {k: v for k, v in (headers or {}).items() if k.lower() != "x-request-id"}
    merged["X-Request-ID"] = sent
    return merged, sent
