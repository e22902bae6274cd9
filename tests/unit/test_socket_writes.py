"""One write per small request and per small response: the head goes with its body, and every
byte still arrives, in order, whatever the socket takes per call."""

from __future__ import annotations

import pytest
from urllib3.connection import HTTPConnection

from app.lean_adapter import SMALL_BODY, _lean
from app.socket_writes import ClientWriter, send_all

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


class Socket:
    """Records each send; takes at most `per_call` bytes each time, as a full socket would."""

    def __init__(self, per_call: int = 1 << 30) -> None:
        self.per_call = per_call
        self.sends: list[bytes] = []
        self.shut = False

    def send(self, data: memoryview | bytes) -> int:
        taken = bytes(data[: self.per_call])
        self.sends.append(taken)
        return len(taken)

    def shutdown(self, how: int) -> None:
        self.shut = True

    def settimeout(self, seconds: float | None) -> None:
        pass

    @property
    def received(self) -> bytes:
        return b"".join(self.sends)


def test_send_all_sends_everything_through_partial_sends() -> None:
    sock = Socket(per_call=3)
    send_all(sock, b"0123456789")
    assert sock.received == b"0123456789"
    assert len(sock.sends) == 4


def test_a_response_head_goes_out_with_its_body() -> None:
    sock = Socket()
    writer = ClientWriter(sock)
    writer.sendall(HEAD)
    assert sock.sends == []
    writer.sendall(b"{}")
    writer.flush()
    assert sock.sends == [HEAD + b"{}"]


def test_a_response_without_a_body_is_sent_when_it_ends() -> None:
    sock = Socket()
    writer = ClientWriter(sock)
    writer.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    writer.flush()
    assert sock.sends == [b"HTTP/1.1 204 No Content\r\n\r\n"]


def test_a_stream_head_goes_out_with_its_first_chunk_and_the_chunks_at_once() -> None:
    sock = Socket()
    writer = ClientWriter(sock)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.sendall(head)
    writer.sendall(b"2\r\n{}\r\n")
    writer.sendall(b"2\r\n[]\r\n")
    assert sock.sends == [head + b"2\r\n{}\r\n", b"2\r\n[]\r\n"]


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",  # another head follows
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
    ],
)
def test_interim_heads_go_out_at_once(head: bytes) -> None:
    sock = Socket()
    ClientWriter(sock).sendall(head)
    assert sock.sends == [head]


def test_a_failed_response_does_not_send_its_head_late() -> None:
    sock = Socket()
    writer = ClientWriter(sock)
    writer.sendall(HEAD)
    writer.shutdown(2)
    writer.flush()
    assert sock.shut
    assert sock.sends == []


def test_other_socket_methods_are_the_sockets_own() -> None:
    sock = Socket()
    writer = ClientWriter(sock)
    writer.sendall(HEAD)
    assert writer.send(b"x") == 1  # sends what was held first: order is kept
    assert sock.sends == [HEAD, b"x"]
    assert writer.settimeout is not None


def request_writes(body: bytes | None, method: str = "POST") -> list[bytes]:
    connection = _lean(HTTPConnection)("backend.test", 80)
    sock = Socket()
    connection.sock = sock
    headers = {"Content-Type": "application/json"}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    connection.request(method, "/v1/chat/completions", body=body, headers=headers)
    return sock.sends


def test_a_small_request_is_one_write() -> None:
    [write] = request_writes(b'{"model":"m"}')
    assert write.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert write.endswith(b'\r\n\r\n{"model":"m"}')


def test_a_request_without_a_body_is_its_head() -> None:
    [write] = request_writes(None, "GET")
    assert write.startswith(b"GET /v1/chat/completions")
    assert write.endswith(b"\r\n\r\n")


def test_a_large_body_is_not_copied_to_join_its_head() -> None:
    body = b"x" * (SMALL_BODY + 1)
    head, sent = request_writes(body)
    assert head.endswith(b"\r\n\r\n")
    assert sent == body
