"""gunicorn's gevent worker, with a shutdown that does not wait for idle keep-alive clients.

On SIGTERM the stock worker stops accepting and waits until every connection is gone or the
graceful timeout passes. A client that keeps an idle keep-alive connection open (httpx, the
openai and ollama SDKs, nginx's upstream pool) holds the worker for the full timeout, and
Kubernetes then waits for nothing. Here, connections waiting between requests are closed at
once; requests in flight, streams included, still run to the end within the graceful timeout.
"""

from __future__ import annotations

from types import FrameType, TracebackType
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker


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

    def timeout_ctx(self) -> _IdleWait:
        return _IdleWait(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # From a signal handler nothing may switch greenlets: the hub expires the waits next,
        # exactly as it would fire an expired keepalive timer.
        loop = gevent.get_hub().loop
        for greenlet, timeout in list(self.idle.items()):
            loop.run_callback(self._expire, greenlet, timeout)

    def _expire(self, greenlet: Any, timeout: gevent.Timeout) -> None:
        if self.idle.get(greenlet) is timeout:  # still waiting for a request: close it
            greenlet.throw(timeout)
