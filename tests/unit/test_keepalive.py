"""Keep-alives in the relay: while the backend is silent, a translation that asks for them gets
its keep-alive bytes every interval, before the first output and during the answer."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import gevent

from app.stream import Relay

INTERVAL = 0.05
SILENCE = 0.3  # six intervals: gevent's timers fire in order, so at least one keep-alive


class Echo:
    """A translation that passes payloads through and asks for keep-alives."""

    keepalive = b"KA\n"
    keepalive_seconds = INTERVAL
    usage = None
    pieces = 0

    def event(self, payload: bytes) -> bytes:
        return payload + b"\n"

    def tail(self) -> bytes:
        return b"END\n"

    def error(self, message: str) -> bytes:
        return f"ERROR {message}\n".encode()


class Backend:
    timeout = (1.0, 5.0)

    def __init__(self) -> None:
        self.broken: list[str] = []
        self.completed = 0

    def stream_completed(self) -> None:
        self.completed += 1

    def stream_broke(self, exc: BaseException, kind: str = "stream_broken") -> None:
        self.broken.append(kind)


def response() -> Any:
    closed: list[bool] = []
    raw = SimpleNamespace(read1=lambda *args, **kwargs: b"", connection=None)
    return SimpleNamespace(status_code=200, raw=raw, close=lambda: closed.append(True))


def relayed(batches: Iterator[list[bytes]], backend: Backend | None = None) -> tuple[int, bytes]:
    relay = Relay(response(), backend or Backend(), Echo(), None, batches=batches)  # type: ignore[arg-type]
    answer = relay.respond("text/event-stream")
    return answer.status_code, b"".join(answer.response)


def test_a_silent_backend_mid_answer_gets_keepalives_between_the_pieces() -> None:
    def batches() -> Iterator[list[bytes]]:
        yield [b"first"]
        gevent.sleep(SILENCE)
        yield [b"second"]

    status, body = relayed(batches())
    assert status == 200
    lines = body.split(b"\n")
    assert lines[0] == b"first"
    assert lines[-3:] == [b"second", b"END", b""]
    assert set(lines[1:-3]) == {b"KA"}
    assert len(lines[1:-3]) >= 1


def test_a_backend_silent_before_its_first_output_starts_the_stream_with_a_keepalive() -> None:
    def batches() -> Iterator[list[bytes]]:
        gevent.sleep(SILENCE)
        yield [b"late"]

    status, body = relayed(batches())
    assert status == 200
    assert body.startswith(b"KA\n")
    assert body.endswith(b"late\nEND\n")


def test_after_keepalives_a_broken_backend_is_an_error_in_band() -> None:
    backend = Backend()

    def batches() -> Iterator[list[bytes]]:
        gevent.sleep(SILENCE)
        raise OSError("connection reset")
        yield []  # a generator

    status, body = relayed(batches(), backend)
    assert status == 200  # already committed: the error is the stream's last event
    assert body.startswith(b"KA\n")
    assert body.endswith(b"ERROR the connection to the backend broke in the middle of the answer\n")
    assert backend.broken == ["stream_broken"]


def test_a_prompt_answer_sends_no_keepalive() -> None:
    status, body = relayed(iter([[b"a", b"b"], [b"c"]]))
    assert (status, body) == (200, b"a\nb\nc\nEND\n")


def test_a_client_that_leaves_stops_the_reader() -> None:
    reads: list[str] = []

    def batches() -> Iterator[list[bytes]]:
        yield [b"first"]
        try:
            gevent.sleep(10)  # the backend is still thinking when the client hangs up
            yield [b"never"]
        finally:
            reads.append("stopped")

    relay = Relay(response(), Backend(), Echo(), None, batches=batches())  # type: ignore[arg-type]
    stream = iter(relay.respond("text/event-stream").response)
    assert next(stream) == b"first\n"
    assert next(stream) == b"KA\n"
    stream.close()  # what gunicorn does when a write to the client fails
    assert reads == ["stopped"]
