"""Bytes on the wire: the SSE reader for backend streams, and the NDJSON lines and single JSON
answers for clients.

Both work on bytes. Decoding to str before splitting lines is a bug: `str.splitlines()` also
splits on U+2028, U+0085 and friends, which JSON strings may carry raw (stack.md §2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

import requests
from flask import Response
from urllib3.exceptions import HTTPError

from .errors import JSON_MIMETYPE

READ_SIZE = 64 * 1024
# One SSE line larger than this is not a token stream any more; refuse to buffer it without end.
MAX_LINE_BYTES = 16 * 1024 * 1024
DONE = b"[DONE]"


class SSEProtocolError(ValueError):
    """The backend's event stream is malformed beyond what the SSE rules tolerate."""


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


def iter_sse_batches(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The `data` payloads of the server-sent events each network read completes, stopping at
    `[DONE]`. Batches let the caller write everything one read brought in a single write.

    Comments (`: ping`), `event:`/`id:`/`retry:` fields and blank keep-alive lines are skipped;
    `\r\n` line ends are accepted; multi-line data is joined with `\n` as the SSE spec says.
    """
    pending = b""
    data: list[bytes] = []
    for chunk in chunks:
        if pending:
            chunk = pending + chunk  # noqa: PLW2901  a line split across two reads
        lines = chunk.split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise SSEProtocolError("backend sent an event line over 16 MiB")
        batch: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]  # noqa: PLW2901
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif not line and data:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload == DONE:
                    if batch:
                        yield batch
                    return
                batch.append(payload)
        if batch:
            yield batch
    if pending.startswith(b"data:"):
        data.append(pending[6:] if pending.startswith(b"data: ") else pending[5:])
    if data:
        payload = b"\n".join(data)
        if payload != DONE:
            yield [payload]


# json.dumps with any non-default argument builds a new encoder per call; this is built once.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def ndjson(obj: Any) -> bytes:
    """One compact JSON line. ASCII escaping is deliberate: the Python SDK splits lines with
    `str.splitlines()`, so a raw U+2028 in model text would cut a line in two."""
    return _encode(obj).encode() + b"\n"


def json_response(obj: Any, status: int = 200) -> Response:
    """A single JSON object, as Ollama sends every answer that is not a stream."""
    return Response(ndjson(obj), status=status, mimetype=JSON_MIMETYPE)


_stamp_second = -1
_stamp_prefix = ""


def now_rfc3339() -> str:
    """UTC wall-clock time as Go's RFC3339Nano prints it (microseconds, `Z`).

    Called once per streamed chunk, so the date part is formatted once per second only.
    """
    global _stamp_second, _stamp_prefix  # noqa: PLW0603  a per-process formatting cache
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _stamp_second = second
    return f"{_stamp_prefix}.{int((now - second) * 1_000_000):06d}Z"
