"""Reading a backend's streamed body: as it arrives, and to its end so the connection is reused."""

from __future__ import annotations

from collections.abc import Iterator

import requests
from urllib3.exceptions import HTTPError

READ_SIZE = 64 * 1024


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
