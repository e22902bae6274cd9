"""The one lifecycle of every streamed answer, whatever API it is translated for.

A backend's streamed body is relayed through a `Translation` (Ollama NDJSON, Anthropic or
Responses events, or the bytes unchanged for `/v1` pass-through):
- the first output is read before the response starts, so an error that comes first still
  gets its HTTP status and the API's error shape;
- after that, every failure becomes the API's in-band error (an `{"error"}` line, an error
  event), never an ending that would pass for a complete answer;
- the backend connection is closed on every exit (a client that hangs up stops the model at
  once: gunicorn closes the generator when a write fails) and reused when the body was read
  to its end;
- the outcome, the metrics and the log line are recorded exactly once;
- a translation may ask for keep-alives (`keepalive` bytes every `keepalive_seconds` while
  the backend is silent, before and during the answer): then the backend is read in a greenlet
  of its own, and a backend silent longer than that before its first output starts the
  response with a keep-alive, its errors then in-band (see `paced`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import gevent
import requests
from flask import Response
from gevent.queue import Empty, Queue
from greenlet import GreenletExit
from urllib3.exceptions import HTTPError, ReadTimeoutError

from . import offload
from .backend import Backend
from .errors import BackendError
from .observe import Exchange
from .outcomes import Outcome
from .replies import stream_response
from .translate.chat_stream import StreamError
from .wire import DONE, SSEProtocolError, iter_sse_batches

READ_SIZE = 64 * 1024
SHUTDOWN_MESSAGE = "the proxy is shutting down; the answer was cut off"


class Translation(Protocol):
    """What the relay asks of a stream's translator. `event` and `tail` raise StreamError when
    the backend's answer is broken."""

    @property
    def usage(self) -> dict[str, Any] | None: ...

    @property
    def pieces(self) -> int: ...

    def event(self, payload: bytes) -> bytes:
        """The client's bytes for one backend event."""
        ...

    def tail(self) -> bytes:
        """The client's bytes after the backend's last event."""
        ...

    def error(self, message: str) -> bytes:
        """The in-band error that ends a stream that has started."""
        ...

    # Optional (read with getattr): `keepalive: bytes`, what the client gets after every
    # `keepalive_seconds: float` of backend silence.


def iter_raw(response: requests.Response, *, decode: bool = True) -> Iterator[bytes]:
    """The response body as it arrives, one network read at a time.

    `read1` returns whatever bytes are available instead of waiting to fill a buffer, so events
    are relayed as soon as they arrive on chunked *and* close-delimited bodies. `decode=False`
    keeps any Content-Encoding, for relaying bytes untouched.
    """
    read1 = response.raw.read1
    while data := read1(READ_SIZE, decode_content=decode):
        yield data


def finish(response: requests.Response, grace: float = 0.1) -> None:
    """Ends a stream whose data is all read, keeping its connection for the next request.

    After `[DONE]` only the chunked terminator is left. Reading it lets urllib3 return the
    connection to the pool (closing instead costs the next request a TCP, maybe TLS,
    handshake). A backend that does not end the body within `grace` seconds is cut off.
    """
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.settimeout(grace)  # urllib3 sets it afresh for the connection's next request
        for _ in range(4):
            if not response.raw.read1(READ_SIZE):
                break  # the end of the body: urllib3 released the connection to the pool
    except (HTTPError, OSError):
        pass  # not reusable after all; close() below drops it
    finally:
        response.close()


def sse_batches(response: requests.Response) -> Iterator[list[bytes]]:
    """The data payloads of an SSE body, grouped by the network read that completed them."""
    return iter_sse_batches(iter_raw(response))


def raw_batches(response: requests.Response) -> Iterator[list[bytes]]:
    """The body's bytes as they arrive, still compressed if they were: for relaying verbatim."""
    return ([chunk] for chunk in iter_raw(response, decode=False))


def paced(batches: Iterator[list[bytes]], seconds: float) -> Iterator[list[bytes] | None]:
    """The batches, and None after every `seconds` without one.

    The relay reads the backend in the request's greenlet, where a read blocks until data
    comes. Here a greenlet of its own reads, handing each batch over through a one-place queue
    (it reads at most one batch ahead of the client), while the request's greenlet waits on the
    queue with a timeout: no polling, and the read timeout still bounds a silent backend. The
    reader's failures are raised here; closing this generator stops the reader.
    """
    handover: Queue[tuple[list[bytes] | None, Exception | None]] = Queue(maxsize=1)

    def pump() -> None:
        try:
            for batch in batches:
                handover.put((batch, None))
            handover.put((None, None))
        except Exception as exc:  # StreamError and kin, raised in the request's greenlet
            handover.put((None, exc))

    reader = gevent.spawn(pump)
    try:
        while True:
            try:
                batch, failure = handover.get(timeout=seconds)
            except Empty:
                yield None
                continue
            if failure is not None:
                raise failure
            if batch is None:
                return
            yield batch
    finally:
        reader.kill()


class Relay:
    """One backend stream relayed to one client.

    What one network read brought goes out in one write: fewer writes (each a syscall and
    gunicorn's bookkeeping), and nothing that has arrived is held back.
    """

    def __init__(
        self,
        response: requests.Response,
        backend: Backend,
        translation: Translation,
        exchange: Exchange | None,
        *,
        batches: Iterable[list[bytes]] | None = None,
        count_tokens: bool = True,
    ) -> None:
        """`exchange`: where the stream's metrics and log line go; None for a body that is not
        a stream of generated output (a `/v1` JSON answer relayed as it arrives)."""
        self.response = response
        self.backend = backend
        self.translation = translation
        self.exchange = exchange
        self.count_tokens = count_tokens
        self._over = False  # the stream ended while its head was read
        self._done = False  # the backend's [DONE] arrived: no further read is needed
        self._tail_sent = False
        # Generate's tail packs the whole conversation into `context`: for a long request, off
        # the event loop like the request's own steps (offload.py).
        self._request_bytes = offload.request_bytes()
        source = self._read(sse_batches(response) if batches is None else batches)
        self._keepalive: bytes | None = getattr(translation, "keepalive", None)
        self._batches: Iterator[list[bytes] | None] = source
        if self._keepalive is not None:
            self._batches = paced(source, translation.keepalive_seconds)  # type: ignore[attr-defined]

    def respond(self, mimetype: str) -> Response:
        """The client's response: whole when the stream ended before its first output, else a
        stream that starts with that output."""
        try:
            started = self._head()
        except StreamError as exc:  # before any output: the error keeps its HTTP status
            self._release()
            raise BackendError(exc.message, exc.status) from None
        except BaseException:
            self._release()
            raise
        if self.exchange is not None:
            self.exchange.stream_started()
        if started is None:  # silent for a while: start with a keep-alive, errors in-band
            assert self._keepalive is not None
            return stream_response(self._body(self._keepalive, output=False), mimetype)
        head, error = started
        if error is not None or self._over:
            self._first_chunk()
            self._end(Outcome.BACKEND_ERROR if error else Outcome.COMPLETED, error)
            return stream_response(head, mimetype)
        return stream_response(self._body(head), mimetype)

    def _head(self) -> tuple[bytes, str | None] | None:
        """The output up to the first non-empty piece, and the error that ended it if any; None
        when the backend stayed silent for a keep-alive interval first.

        A stream that ends before any output (all tool calls, or a backend that fails with an
        empty 200 as llama-cpp-python does) is finished here (`_over`), so its errors still get
        an HTTP status.
        """
        for batch in self._batches:
            if batch is None:
                return None
            data, error = self._translate(batch)
            if error is not None:
                if not data:
                    raise error
                return data + self.translation.error(error.message), error.message
            if data:
                return self._with_tail(data)
        self._over = True
        return self._tail(), None

    def _with_tail(self, data: bytes) -> tuple[bytes, str | None]:
        """`data`, and the stream's end when the same read brought `[DONE]`: one write fewer,
        and none that waits on a read that could only find the end of the body. A tail that
        finds the answer broken ends it with the in-band error instead."""
        if not self._done:
            return data, None
        self._tail_sent = True
        try:
            return data + self._tail(), None
        except StreamError as exc:
            return data + self.translation.error(exc.message), exc.message

    def _tail(self) -> bytes:
        return offload.cpu(self._request_bytes, self.translation.tail)

    def _body(self, head: bytes, *, output: bool = True) -> Iterator[bytes]:
        """The stream after `head`: the first output, or (`output=False`) a keep-alive."""
        outcome, error = Outcome.ERROR, None
        translation = self.translation
        try:
            yield head
            if output:
                self._first_chunk()
            for batch in self._batches:
                if batch is None:
                    yield self._keepalive or b""
                    continue
                data, failure = self._translate(batch)
                if failure is not None:
                    outcome, error = Outcome.BACKEND_ERROR, failure.message
                    yield data + translation.error(failure.message)
                    return
                if data:
                    data, error = self._with_tail(data)
                    yield data
                    if error is not None:
                        outcome = Outcome.BACKEND_ERROR
                        return
                    if not output:
                        output = True
                        self._first_chunk()
            if not self._tail_sent:
                yield self._tail()
            outcome = Outcome.COMPLETED
        except StreamError as exc:  # the connection broke, or the end was missing
            outcome, error = Outcome.BACKEND_ERROR, exc.message
            yield translation.error(exc.message)
        except GreenletExit:
            # The worker cuts what still runs when the graceful timeout nears: tell the client
            # the answer is cut off, then end the response (the worker exits right after).
            outcome = Outcome.SHUTDOWN
            yield translation.error(SHUTDOWN_MESSAGE)
        except GeneratorExit:
            outcome = Outcome.CLIENT_DISCONNECT  # a write to the client failed: gunicorn closed us
            raise
        finally:
            self._end(outcome, error)

    def _translate(self, batch: list[bytes]) -> tuple[bytes, StreamError | None]:
        """The output of one batch, and the error that cut it short (with what came before)."""
        event = self.translation.event
        out: list[bytes] = []
        try:
            for payload in batch:
                if payload is DONE:
                    self._done = True
                    break
                out.append(event(payload))
        except StreamError as exc:
            return b"".join(out), exc
        return b"".join(out), None

    def _first_chunk(self) -> None:
        if self.exchange is not None:
            self.exchange.first_chunk()

    def _release(self) -> None:
        """Stops reading (a keep-alive reader greenlet too) and drops the connection."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self.response.close()  # the backend stops generating now

    def _end(self, outcome: Outcome, error: str | None) -> None:
        if outcome is Outcome.COMPLETED:
            finish(self.response)
            if self.response.status_code < 400:  # a relayed error body is no sign of health
                self.backend.stream_completed()
        else:
            self._release()
        if self.exchange is None:
            return
        translation = self.translation
        self.exchange.stream_ended(
            outcome,
            translation.usage,
            translation.pieces,
            error,
            count_tokens=self.count_tokens,
        )

    def _read(self, batches: Iterable[list[bytes]]) -> Iterator[list[bytes]]:
        """The backend's payloads, a network read at a time; every way the stream can break
        becomes a StreamError."""
        backend = self.backend
        try:
            yield from batches
        except ReadTimeoutError as exc:
            backend.stream_broke(exc, "stream_timeout")
            raise StreamError(
                f"the backend sent nothing for {backend.timeout[1]:g}s in the middle of the answer"
            ) from None
        except (HTTPError, requests.RequestException, OSError) as exc:
            backend.stream_broke(exc)
            raise StreamError(
                "the connection to the backend broke in the middle of the answer"
            ) from None
        except SSEProtocolError as exc:
            raise StreamError(f"the backend's event stream is malformed: {exc}") from None
