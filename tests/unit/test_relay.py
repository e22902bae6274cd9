"""The relay's writes: what one network read brought goes out in one write, and the stream's
end goes out with the read that brought the backend's [DONE], not in a write of its own."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from app.stream import Relay
from app.translate.chat_stream import StreamError
from app.wire import DONE


class Lines:
    usage = None
    pieces = 0

    def __init__(self, tail_error: str | None = None) -> None:
        self.tail_error = tail_error

    def event(self, payload: bytes) -> bytes:
        return payload + b"\n"

    def tail(self) -> bytes:
        if self.tail_error:
            raise StreamError(self.tail_error)
        return b"END\n"

    def error(self, message: str) -> bytes:
        return f"ERROR {message}\n".encode()


class Backend:
    timeout = (1.0, 5.0)
    completed = 0

    def stream_completed(self) -> None:
        self.completed += 1

    def stream_broke(self, exc: BaseException, kind: str = "stream_broken") -> None:
        raise AssertionError("not broken")


def writes(batches: list[list[bytes]], translation: Lines | None = None) -> tuple[list[bytes], Any]:
    """The pieces the client's response is written in, and the backend."""
    raw = SimpleNamespace(read1=lambda *args, **kwargs: b"", connection=None)
    response = SimpleNamespace(status_code=200, raw=raw, close=lambda: None)
    backend = Backend()
    source: Iterator[list[bytes]] = iter(batches)
    relay = Relay(response, backend, translation or Lines(), None, batches=source)  # type: ignore[arg-type]
    answer = relay.respond("application/x-ndjson")
    assert answer.is_streamed
    return list(answer.response), backend


def test_the_end_goes_out_with_the_read_that_brought_done() -> None:
    pieces, backend = writes([[b"a", b"b"], [b"c", DONE]])
    assert pieces == [b"a\nb\n", b"c\nEND\n"]
    assert backend.completed == 1


def test_a_stream_that_fits_one_read_is_one_piece_and_still_a_stream() -> None:
    pieces, _ = writes([[b"a", DONE]])
    assert pieces == [b"a\nEND\n"]


def test_without_done_the_end_waits_for_the_body_to_end() -> None:
    pieces, _ = writes([[b"a"], [b"b"]])
    assert pieces == [b"a\n", b"b\n", b"END\n"]


def test_done_alone_in_its_read_ends_the_stream_once() -> None:
    pieces, _ = writes([[b"a"], [DONE]])
    assert pieces == [b"a\n", b"END\n"]


def test_an_end_that_finds_the_answer_broken_is_the_in_band_error() -> None:
    pieces, backend = writes([[b"a"], [b"b", DONE]], Lines(tail_error="no finish_reason"))
    assert pieces == [b"a\n", b"b\nERROR no finish_reason\n"]
    assert backend.completed == 0
