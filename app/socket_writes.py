"""Fewer system calls per request: whole writes without gevent's extra call, and a response
head sent together with its body.

On loopback and in a pod, a write is the most expensive thing a request does: the kernel runs
the receiver's side of TCP inside the sender's system call. A non-streamed request used to make
eight of them: gevent's `sendall` asks the socket's buffer size (getsockopt) before every
send, and both http.client (to the backend) and gunicorn (to the client) write a request's or
response's head apart from its body.
"""

from __future__ import annotations

from typing import Any


def send_all(sock: Any, data: bytes | bytearray | memoryview) -> None:
    """`sock.sendall(data)` in as few system calls as the socket allows. gevent's `send` waits
    (within the socket's timeout) whenever the socket cannot take more."""
    view = memoryview(data)
    while view:
        view = view[sock.send(view) :]


class ClientWriter:
    """The client's socket, as gunicorn writes one response to it.

    gunicorn writes the head when the app gives it the first piece of the body, then that
    piece: here a final head (not 1xx) goes out in the same write as the piece, or alone when
    the response ends without a body (`flush`). gunicorn writes nothing for an empty piece, so
    a stream whose first piece is empty has its head sent with the next one: the app's streams
    start with a non-empty piece (stream.py). Everything else is the socket's own."""

    __slots__ = ("_head", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._head: bytes | None = None

    def sendall(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif _is_final_head(data):
            self._head = data
            return
        send_all(self._sock, data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            send_all(self._sock, head)

    def send(self, data: bytes) -> int:
        self.flush()
        sent: int = self._sock.send(data)
        return sent

    def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def shutdown(self, how: int) -> None:
        self._head = None  # the response failed: its head is not sent after all
        self._sock.shutdown(how)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _is_final_head(data: bytes) -> bool:
    # "HTTP/1.1 200 ...": a 1xx head (100 Continue, 103 Early Hints) is followed by another.
    return data.startswith(b"HTTP/") and data[9:10] != b"1" and data.endswith(b"\r\n\r\n")
