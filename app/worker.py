"""gunicorn's gevent worker, with a shutdown that keeps the proxy's promises.

On SIGTERM the stock worker stops accepting and waits until every connection is gone or the
graceful timeout passes. Two things go wrong with that:
- a client that keeps an idle keep-alive connection open (httpx, the openai and ollama SDKs,
  nginx's upstream pool) holds the worker for the full timeout, and Kubernetes then waits for
  nothing: here, connections waiting between requests are closed at once;
- the master SIGKILLs the worker when the graceful timeout ends, before the worker's own
  (later-starting) timer would stop what still runs, so long streams are cut mid-line with no
  error: here, requests still running shortly before the deadline are stopped by the worker,
  which lets each stream end with an error line (relay.py handles the GreenletExit).
Requests in flight, streams included, still run to the end within the graceful timeout.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import FrameType, TracebackType
from typing import Any

import gevent
from gunicorn.glogging import Logger
from gunicorn.workers.ggevent import GeventWorker

from .logconfig import access_fields


class _IdleWait:
    """The wait for a connection's next request (gunicorn's `timeout_ctx`), made interruptible."""

    def __init__(self, worker: ProxyWorker) -> None:
        self._worker = worker
        # keepalive timeout as before; an already stopping worker waits for nothing.
        seconds = worker.cfg.keepalive if worker.alive else 0.001
        self._timeout = gevent.Timeout(seconds, False)

    def __enter__(self) -> _IdleWait:
        self._timeout.start()
        self._worker.idle[gevent.getcurrent()] = self._timeout
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._worker.idle.pop(gevent.getcurrent(), None)
        # Timeout(..., False) swallows its own expiry: gunicorn then sees no request and closes.
        return bool(self._timeout.__exit__(kind, value, tb))


class ProxyWorker(GeventWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle: dict[Any, gevent.Timeout] = {}
        self.busy: set[Any] = set()  # greenlets handling a request right now

    def handle_request(self, *args: Any) -> Any:
        current = gevent.getcurrent()
        self.busy.add(current)
        try:
            return super().handle_request(*args)
        finally:
            self.busy.discard(current)

    def timeout_ctx(self) -> _IdleWait:
        return _IdleWait(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # From a signal handler nothing may switch greenlets: the hub expires the waits next,
        # exactly as it would fire an expired keepalive timer.
        loop = gevent.get_hub().loop
        for greenlet, timeout in list(self.idle.items()):
            loop.run_callback(self._expire, greenlet, timeout)
        graceful = float(self.cfg.graceful_timeout)
        # Leave the requests time to write their error line before the master's SIGKILL.
        loop.run_callback(gevent.spawn_later, max(graceful - 1.0, graceful / 2), self._cut_busy)

    def _cut_busy(self) -> None:
        for greenlet in list(self.busy):
            greenlet.kill(block=False)

    def _expire(self, greenlet: Any, timeout: gevent.Timeout) -> None:
        if self.idle.get(greenlet) is timeout:  # still waiting for a request: close it
            greenlet.throw(timeout)


class ProxyLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the access line as JSON fields built straight from the environ.

    gunicorn's own access() formats a dict of every header and environ entry for its text
    format (`%(h)s ...`), ~40 µs a request, and does it even when LOG_LEVEL then drops the line.
    """

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log.isEnabledFor(logging.INFO):
            return
        status = getattr(resp, "status_code", None)
        fields = access_fields(status, getattr(resp, "sent", None), environ, request_time)
        self.access_log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
