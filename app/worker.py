"""gunicorn's gevent worker, with deadlines for clients and a shutdown that keeps the proxy's
promises.

Clients. gunicorn gives a client as long as it likes: to send a request's headers, to idle
between requests, to read its answer. Each of those holds one of the worker's connection slots,
so a thousand slow or idle clients stop the worker serving anyone. Here:
- a new connection's headers must arrive within HEADER_TIMEOUT; between requests a connection
  may idle for gunicorn's keepalive, but when the worker is nearly full, idle connections are
  closed first (a client reconnects; a new one would otherwise wait);
- a client that reads nothing of its answer for WRITE_TIMEOUT is disconnected, which closes
  the backend stream it was holding (the body deadline is the app's, in body.py).
These bound what one client can hold; they do not make the worker safe to expose alone: nginx
or an ingress in front is expected (it buffers slow clients for us).

Shutdown. On SIGTERM the stock worker stops accepting and waits until every connection is gone
or the graceful timeout passes. Two things go wrong with that:
- a client that keeps an idle keep-alive connection open (httpx, the openai and ollama SDKs,
  nginx's upstream pool) holds the worker for the full timeout, and Kubernetes then waits for
  nothing: here, connections waiting between requests are closed at once, while a connection
  accepted just before the signal still gets its first request answered (a SIGHUP reload
  replaces workers while clients keep connecting);
- the master SIGKILLs the worker when the graceful timeout ends, before the worker's own
  (later-starting) timer would stop what still runs, so long streams are cut mid-line with no
  error: here, requests still running shortly before the deadline are stopped by the worker,
  which lets each stream end with an error line (stream.py handles the GreenletExit).
Requests in flight, streams included, still run to the end within the graceful timeout.

gunicorn's own error answers (a malformed request line, headers too large) are HTML; here they
are JSON in the shape of the API the path belongs to.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from contextvars import ContextVar
from datetime import timedelta
from types import FrameType, TracebackType
from typing import Any

import gevent
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http.message import Request
from gunicorn.workers.ggevent import GeventWorker

from .config import Settings
from .logconfig import access_fields
from .socket_writes import ClientWriter
from .translate.anthropic.errors import error_object, is_anthropic_path

# Beyond this share of the connection slots in use, idle keep-alive connections are closed.
PRESSURE = 0.9
# The path of the request gunicorn is refusing: its API decides the error's shape.
_REFUSED_PATH: ContextVar[str] = ContextVar("refused_path", default="")


class _IdleWait:
    """The wait for a connection's next request (gunicorn's `timeout_ctx`), made interruptible."""

    def __init__(self, worker: ProxyWorker) -> None:
        self._worker = worker
        self._timeout = gevent.Timeout(worker.wait_seconds(), False)

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
        self.returning: set[Any] = set()  # connections that have had a request
        settings = Settings.from_env()
        self.header_timeout = settings.header_timeout
        self.write_timeout = settings.write_timeout

    def init_process(self) -> None:
        # gunicorn offers no hook for its own error answers: its one writer is replaced.
        util.write_error = _write_json_error
        super().init_process()

    def wait_seconds(self) -> float:
        """How long the current connection may take to send its next request."""
        if gevent.getcurrent() not in self.returning:
            # A new connection is a client that has just sent, or is sending, its first request:
            # it is answered, even by a stopping worker (closing it would be a dropped request).
            return self.header_timeout
        if not self.alive:
            return 0.001  # a stopping worker waits for no further request
        return float(self.cfg.keepalive)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        current = gevent.getcurrent()
        if len(self.busy) + len(self.idle) >= PRESSURE * self.worker_connections:
            self._close_idle()
        try:
            super().handle(listener, client, addr)
        finally:
            self.returning.discard(current)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        current = gevent.getcurrent()
        self.busy.add(current)
        self.returning.add(current)
        # A blocked write waits this long for a client that does not read (reads of the body
        # are bounded by the app); the socket is back to blocking for the wait between requests.
        sock.settimeout(self.write_timeout)
        writer = ClientWriter(sock)  # the head of a small response goes out with its body
        try:
            try:
                handled = super().handle_request(listener_name, req, writer, addr)
            except StopIteration:  # answered, and the connection closes after it
                writer.flush()
                raise
            writer.flush()  # a response without a body: its head alone
            return handled
        except TimeoutError:
            self.log.info("closed a connection from %s: its client read nothing for %ss",
                          addr[0] if addr else "-", self.write_timeout)  # fmt: skip
            raise StopIteration from None  # gunicorn closes the connection quietly
        finally:
            sock.settimeout(None)
            self.busy.discard(current)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        token = _REFUSED_PATH.set(_refused_path(req, exc))
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            _REFUSED_PATH.reset(token)

    def timeout_ctx(self) -> _IdleWait:
        return _IdleWait(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # From a signal handler nothing may switch greenlets: the hub expires the waits next,
        # exactly as it would fire an expired keepalive timer.
        loop = gevent.get_hub().loop
        self._close_idle(keep_alive_only=True)
        graceful = float(self.cfg.graceful_timeout)
        # Leave the requests time to write their error line before the master's SIGKILL.
        loop.run_callback(gevent.spawn_later, max(graceful - 1.0, graceful / 2), self._cut_busy)

    def _close_idle(self, *, keep_alive_only: bool = False) -> None:
        """Closes the connections waiting for a request: all of them when the worker is nearly
        full (a new one waiting for its headers is then likely slow on purpose), only those
        between two requests when it stops (a new one is a request on its way)."""
        # Through the hub: throwing into a greenlet straight from another would switch to it,
        # and its end would return to the hub, never to the caller.
        loop = gevent.get_hub().loop
        for greenlet, timeout in list(self.idle.items()):
            if not keep_alive_only or greenlet in self.returning:
                loop.run_callback(self._expire, greenlet, timeout)

    def _cut_busy(self) -> None:
        for greenlet in list(self.busy):
            greenlet.kill(block=False)

    def _expire(self, greenlet: Any, timeout: gevent.Timeout) -> None:
        if self.idle.get(greenlet) is timeout:  # still waiting for a request: close it
            greenlet.throw(timeout)


def _refused_path(req: Any, exc: BaseException) -> str:
    """The path of the request gunicorn refuses. A request whose headers it cannot parse never
    reaches handle_error as `req` (that is None, or the connection's previous request, whose
    API would then shape the error): its request line was parsed first, and the Request being
    built is in the traceback."""
    trace = exc.__traceback__
    while trace is not None:
        building = trace.tb_frame.f_locals.get("self")
        if isinstance(building, Request) and isinstance(getattr(building, "path", None), str):
            return str(building.path)
        trace = trace.tb_next
    return getattr(req, "path", None) or ""


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's refusal of a request it could not parse, as JSON in the API's error shape."""
    message = f"{reason}: {mesg}" if mesg else reason
    path = _REFUSED_PATH.get()
    if is_anthropic_path(path):
        error: dict[str, Any] = error_object(message, status_int)
    elif path.startswith("/v1/"):
        error = {
            "error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}
        }  # fmt: skip
    else:
        error = {"error": message}
    body = json.dumps(error, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class ProxyLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the access line as JSON fields built straight from the environ.

    gunicorn's own access() formats a dict of every header and environ entry for its text
    format (`%(h)s ...`), ~40 µs a request, and does it even when LOG_LEVEL then drops the line.
    Behind a forwarder gunicorn trusts (its FORWARDED_ALLOW_IPS, loopback by default), the
    client's address is the one the forwarder put in X-Forwarded-For.
    """

    _forwarders: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    _any_forwarder = False

    def _trusted(self, address: object) -> bool:
        if self._forwarders is None:
            allowed = self.cfg.forwarded_allow_ips
            entries = allowed if isinstance(allowed, list) else str(allowed).split(",")
            self._any_forwarder = "*" in (entry.strip() for entry in entries)
            networks = []
            for entry in entries:
                with contextlib.suppress(ValueError):
                    networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            self._forwarders = tuple(networks)
        if self._any_forwarder:
            return True
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in network for network in self._forwarders)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log.isEnabledFor(logging.INFO):
            return
        status = getattr(resp, "status_code", None)
        fields = access_fields(status, getattr(resp, "sent", None), environ, request_time)
        if fields["path"] is None:  # a request gunicorn refused never reached the app
            fields["path"] = getattr(req, "path", None) or "-"
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self._trusted(fields["remote_addr"]):
            # The address nginx (or another trusted forwarder) saw: the last hop it added.
            fields["remote_addr"] = forwarded.rsplit(",", 1)[-1].strip()[:64]
        self.access_log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
