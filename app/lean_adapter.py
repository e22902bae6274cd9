"""requests' HTTPAdapter for one backend, without the per-call work the proxy never uses.

requests stays the owner of the pool, the retries and TLS: this subclass overrides only the
hooks requests documents for subclassing, and `HTTPAdapter.send` itself is unchanged. Per call,
the stock adapter parses the URL again to find its pool (and, for HTTPS, checks the CA bundle
on disk), copies the path out of the URL, and extracts cookies into a jar nobody reads. Its
pooled connections also ask gevent's `poll` whether the backend closed them while idle, which
under gevent builds a watcher and switches to the hub on every request. Together that was about
a tenth of the CPU of a whole non-streamed `/api/chat` (`python -m bench.profile`).

One adapter serves one origin (scheme, host and port): the backend's. A request for any other
URL takes requests' own path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from gevent import monkey
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool

from .socket_writes import send_all

# Bodies up to this size go out in the same write as the request's head (joining copies them).
SMALL_BODY = 64 * 1024
# The real select(): with a zero timeout it is one non-blocking system call, with no gevent
# watcher, no greenlet switch and no timer.
_select = monkey.get_original("select", "select")


def _lean(base: Any) -> Any:  # urllib3 types its connection classes as protocols
    """`base`, with an idle check of one call and a small request in one write.

    Idle check: readable means the backend closed the connection (or sent bytes nobody asked
    for); either way it is not reused. Writes: http.client sends a request's head, then
    urllib3 its body; here a body of up to SMALL_BODY bytes goes out in the same write: the
    head is held at `endheaders` and made when the body arrives in `send`."""

    class Connection(base):  # type: ignore[misc]
        _body_follows = False
        _head_held = False
        _head: list[bytes] | None = None

        @property
        def is_connected(self) -> bool:
            sock = self.sock
            if sock is None:
                return False
            readable, _, _ = _select([sock], [], [], 0)
            return not readable

        def putrequest(self, *args: Any, **kwargs: Any) -> None:
            self._body_follows = self._head_held = False
            super().putrequest(*args, **kwargs)

        def putheader(self, header: str | bytes, *values: Any) -> None:
            name = header.decode("latin-1") if isinstance(header, bytes) else header
            if name.lower() == "content-length":
                self._body_follows = 0 < int(values[0]) <= SMALL_BODY
            super().putheader(header, *values)

        def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
            if self._body_follows and message_body is None:
                self._head_held = True  # until send() brings the body
                return
            super().endheaders(message_body, encode_chunked=encode_chunked)

        def send(self, data: Any) -> None:
            if self._head is not None:  # endheaders() below, handing over the head
                self._head.append(bytes(data))
                return
            if self._head_held:
                self._head_held, self._head = False, []
                try:
                    super().endheaders()
                finally:
                    head, self._head = b"".join(self._head), None
                data = head + bytes(data)
            if self.sock is not None and isinstance(data, bytes | bytearray | memoryview):
                send_all(self.sock, data)
            else:
                super().send(data)

    Connection.__name__ = Connection.__qualname__ = f"Lean{base.__name__}"
    return Connection


class LeanAdapter(HTTPAdapter):
    def __init__(self, origin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(origin)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._pools: dict[tuple[Any, Any], ConnectionPool] = {}

    def _own(self, url: str) -> bool:
        return url.startswith(self.origin) and "#" not in url

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Any = None,
        cert: Any = None,
    ) -> ConnectionPool:
        url = request.url or ""
        if proxies or not self._own(url):
            return super().get_connection_with_tls_context(
                request, verify, proxies=proxies, cert=cert
            )
        key = (verify, cert)
        cached = self._pools.get(key)
        if cached is not None:
            return cached
        pool = super().get_connection_with_tls_context(request, verify, cert=cert)
        assert isinstance(pool, HTTPConnectionPool)  # HTTPS pools are HTTP pools too
        pool.ConnectionCls = _lean(pool.ConnectionCls)
        super().cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]
        self._pools[key] = pool
        return pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if conn not in self._pools.values():  # ours were set up once, when made
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        url = request.url or ""
        if proxies or not self._own(url):
            return str(super().request_url(request, proxies))
        return url[len(self.origin) :] or "/"

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """requests' Response, minus the cookie jar filled from the answer's headers (the proxy
        sends no cookies and relays none) and the text encoding (nothing here decodes text)."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response

    def close(self) -> None:
        self._pools.clear()
        super().close()
